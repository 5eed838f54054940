# Sourced by scripts/device-check.sh and bench/gpu_vs_hf.sh on the GPU machine: unpacks the Debian packages
# that scripts/gpu-machine-deps.sh downloaded (carried compressed in third_party/gpu-machine/debs, to stay
# inside the device tool's 64 MiB), points pkg-config, CMake and the loader at them, and adds CUDA's
# libraries wherever the image keeps them (the toolkit, or pip's nvidia-* wheels). Sets CMAKE_ARGS.
gpu_deps=$PWD/third_party/gpu-machine
if [[ -d $gpu_deps/debs ]]; then
  if [[ ! -e $gpu_deps/usr ]]; then
    for deb in "$gpu_deps"/debs/*.deb; do dpkg-deb -x "$deb" "$gpu_deps" || echo "could not unpack $deb" >&2; done
    # Debian's alternatives links are absent after a plain unpack: OpenBLAS keeps its files in openblas-pthread/.
    sed -E -i "s#^([a-z_]+)=.*/usr#\1=$gpu_deps/usr#" "$gpu_deps"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc \
      "$gpu_deps"/usr/lib/x86_64-linux-gnu/openblas-pthread/pkgconfig/*.pc
  fi
  gpu_lib=$gpu_deps/usr/lib/x86_64-linux-gnu
  export PKG_CONFIG_PATH=$gpu_lib/pkgconfig:$gpu_lib/openblas-pthread/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$gpu_lib:$gpu_lib/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  # GMP's and OpenSSL's headers sit in Debian's multiarch folder, a default include path only on Debian.
  export CPATH=$gpu_deps/usr/include/x86_64-linux-gnu:$gpu_deps/usr/include${CPATH:+:$CPATH}
  export LIBRARY_PATH=$gpu_lib${LIBRARY_PATH:+:$LIBRARY_PATH}
  CMAKE_ARGS="-DCMAKE_PREFIX_PATH=$gpu_deps/usr ${CMAKE_ARGS:-}"
fi
for cuda_lib in /usr/local/cuda/lib64 $(${PYTHON:-python3} -c 'import glob, site
for p in site.getsitepackages(): print(" ".join(glob.glob(p + "/nvidia/*/lib")))' 2>/dev/null); do
  if [[ -d $cuda_lib ]]; then LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$cuda_lib; fi
done
export LD_LIBRARY_PATH
