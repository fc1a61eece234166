#!/usr/bin/env bash
# Install hozen's build and test dependencies on Debian 12 (as root).
# Installs only what is missing, so it is cheap to run again.
set -euo pipefail

pkgs=(
	build-essential meson ninja-build pkg-config
	libssl-dev libjansson-dev libfuse3-dev fuse3 libgit2-dev zlib1g-dev libmagic-dev
	libarchive-dev
	clang libclang-rt-14-dev valgrind git python3 openssl
	attr e2fsprogs util-linux
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}; run as root" >&2
	exit 2
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
