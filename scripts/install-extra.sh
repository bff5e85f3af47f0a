#!/bin/sh
# install-extra.sh DESTDIR PREFIX - what `make install` adds to the CMake
# install (binaries, systemd units, man pages, bash completion): the module
# source for DKMS, the uapi headers, the documentation.
set -eu
dest=$1 prefix=$2
top=$(cd "$(dirname "$0")/.." && pwd)
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/kmod/dkms.conf")
src=$dest/usr/src/kvm-ft-$ver
mkdir -p "$src/uapi/linux"
cp "$top"/kmod/ft_*.c "$top"/kmod/*.h "$top/kmod/Kbuild" "$top/kmod/Makefile" \
	"$top/kmod/dkms.conf" "$src/"
cp "$top"/uapi/linux/*.h "$src/uapi/linux/"
mkdir -p "$dest$prefix/include/linux"
cp "$top"/uapi/linux/*.h "$dest$prefix/include/linux/"
mkdir -p "$dest$prefix/share/doc/kvm-ft"
cp "$top"/Documentation/*.md "$dest$prefix/share/doc/kvm-ft/"
echo "installed module source in $src (dkms install kvm-ft/$ver)"
