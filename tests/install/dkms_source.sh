#!/bin/sh
# dkms_source.sh - the module source that `make install` lays out for DKMS
# builds on its own (uapi inside, no generated files), as dkms would
# build it: Kbuild against the installed kernel headers.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
kdir=$(ls -d /lib/modules/*/build 2>/dev/null | sort -V | tail -n 1)
[ -n "$kdir" ] || { echo "SKIP: no kernel headers"; exit 77; }
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
sh "$top/scripts/install-extra.sh" "$dest" /usr > /dev/null
src=$(ls -d "$dest"/usr/src/kvm-ft-*)
[ -f "$src/dkms.conf" ] && [ -f "$src/uapi/linux/kvm_ft.h" ]
! ls "$src"/*.mod.c 2>/dev/null
make -s -C "$kdir" M="$src" modules > "$dest/build.log" 2>&1 || { cat "$dest/build.log"; exit 1; }
modinfo "$src/kvm_ft.ko" | grep -q '^depends: *$'	# no link to kvm.ko
echo "DKMS source builds: $src"
