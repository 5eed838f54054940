#!/usr/bin/env bash
# Prepares third_party/gpu-machine/: the Debian packages of the build dependencies the GPU machine's image
# lacks (Oniguruma, utf8proc, GMP, Eigen; it has the others, and libcurl and cairo are optional), unpacked,
# for carrying there with the working tree. Run here, on Debian; scripts/device-check.sh and
# bench/gpu_vs_hf.sh use the folder when it exists. About 12 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

root=third_party/gpu-machine
rm -rf "$root" && mkdir -p "$root/debs"
(cd "$root/debs" && apt-get download -qq libonig-dev libonig5 libutf8proc-dev libutf8proc2 libgmp-dev libgmp10 \
  libgmpxx4ldbl libeigen3-dev)
for deb in "$root"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
rm -rf "$root/debs" "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/pkgconfig"  # keep share/eigen3
echo "unpacked into $root: $(du -sh "$root" | cut -f1)"
