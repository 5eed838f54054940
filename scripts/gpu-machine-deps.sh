#!/usr/bin/env bash
# Prepares third_party/gpu-machine/: the Debian packages of the three build dependencies the GPU machine's
# image lacks (Oniguruma, utf8proc, GMP; it has the others), unpacked, for carrying there with the working tree.
# Run here, on Debian; bench/gpu_vs_hf.sh uses the folder when it exists. About 2 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

root=third_party/gpu-machine
rm -rf "$root" && mkdir -p "$root/debs"
(cd "$root/debs" && apt-get download -qq libonig-dev libonig5 libutf8proc-dev libutf8proc2 libgmp-dev libgmp10 \
  libgmpxx4ldbl)
for deb in "$root"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
rm -rf "$root/debs" "$root/usr/share"
echo "unpacked into $root: $(du -sh "$root" | cut -f1)"
