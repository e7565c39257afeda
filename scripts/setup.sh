#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing, the demo and the charts need.
# Idempotent and non-interactive: installs only what is missing, says what, fails loudly.
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config git          # toolchain
  libeigen3-dev libtbb-dev libfmt-dev            # core libraries
  catch2 libbenchmark-dev                        # tests and micro-benchmarks
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libpng-dev   # CLI, TOML, JSON, pictures
  python3 python3-matplotlib python3-numpy       # charts
  python3-dev python3-pybind11 python3-pytest python3-torch   # the Python module, its tests
  libopenblas0-pthread                           # a BLAS for python3-torch (else the reference one)
  clang-14 libclang-rt-14-dev                    # libFuzzer targets (scripts/fuzz.sh)
  munge slurmctld slurmd slurm-client            # the local Slurm cluster of tests/slurm/
  openmpi-bin libopenmpi-dev                     # spattn::distributed and its mpirun tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} required packages are installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup: error: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -q; then
  echo "setup: error: apt-get update failed" >&2
  exit 1
fi
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  echo "setup: error: apt-get install failed for: ${missing[*]}" >&2
  exit 1
fi
echo "setup: done"
