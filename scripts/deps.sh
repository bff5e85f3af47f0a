#!/bin/sh
# Install, once, every Debian 12 package kvm-ft needs to build, test and
# demo. Idempotent: does nothing when all are present.
set -e
PKGS="build-essential cmake pkg-config git kmod cpio xz-utils iproute2
 linux-headers-amd64 linux-image-amd64 linux-source-6.1 qemu-system-x86
 busybox-static libmnl-dev libnl-route-3-dev catch2 libcli11-dev libfmt-dev
 nlohmann-json3-dev libssl-dev libbenchmark-dev spin bpftrace clang
 libclang-rt-14-dev zlib1g-dev go-md2man man-db groff-base python3
 bash-completion libfuse3-dev fuse3 libsqlite3-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: need root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
