#!/usr/bin/env bash
# Installs convkit's build and test dependencies from Debian's packages when missing, and any
# further packages named as arguments (scripts/fuzz.sh adds clang's).
set -euo pipefail
packages=(cmake ninja-build g++ libgtest-dev libfmt-dev nlohmann-json3-dev libhwy-dev
          libbenchmark-dev libopenblas-openmp-dev libcli11-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
