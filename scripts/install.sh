#!/usr/bin/env bash
# Set-up for a fresh Debian machine, idempotent: a second run skips what is there.
#   bash scripts/install.sh         the app's needs: Fashion-MNIST (Debian package), .venv, requirements.txt
#   bash scripts/install.sh --test  also Chromium (Debian package) and requirements-test.txt
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

apt_packages=()
if [ -z "${HASHDEMO_FMNIST_DIR:-}" ] && [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  apt_packages+=(dataset-fashion-mnist)
fi
if [ "$with_tests" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  apt_packages+=(chromium)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing Debian packages: ${apt_packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
requirements=requirements.txt
[ "$with_tests" = 1 ] && requirements=requirements-test.txt
# A stamp named by the requirements' digest lets a second run skip pip entirely.
stamp=".venv/.installed-$(cat requirements.txt "$requirements" pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing Python packages from $requirements (about 80 s on a fresh machine)"
  .venv/bin/pip install -q --disable-pip-version-check -r "$requirements"
  # the package itself, editable: `python -m hashdemo` from anywhere and the `hashdemo` console script
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  touch "$stamp"
fi
echo "set-up done"
