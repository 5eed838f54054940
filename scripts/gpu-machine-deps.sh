#!/usr/bin/env bash
# Prepares third_party/gpu-machine/debs: the Debian packages of every build dependency besides CUDA (the GPU
# machine's Ubuntu image has CMake, a compiler and CUDA, and no way to install the rest), kept compressed for
# carrying there with the working tree; scripts/gpu-machine-env.sh unpacks them there. Run here, on Debian.
# About 21 MB. libcurl and cairo are optional and left out.
set -euo pipefail
cd "$(dirname "$0")/.."

root=third_party/gpu-machine
rm -rf "$root" && mkdir -p "$root/debs"
(cd "$root/debs" && apt-get download -qq libonig-dev libonig5 libutf8proc-dev libutf8proc2 libgmp-dev libgmp10 \
  libgmpxx4ldbl libeigen3-dev nlohmann-json3-dev libcli11-dev libfmt-dev libfmt9 libssl-dev libssl3 \
  libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libgfortran5 libquadmath0 libgtest-dev libgmock-dev)
echo "downloaded into $root/debs: $(du -sh "$root/debs" | cut -f1)"
