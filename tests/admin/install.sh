#!/bin/sh
# install.sh BUILD - `make install DESTDIR=...` into an empty root: exactly
# the expected files land under DESTDIR (binaries, systemd unit, man pages,
# bash completion, uapi headers, DKMS module source, docs), `man` finds
# the pages there, and nothing is written outside it: as root the install
# runs in a mount namespace where /usr, /etc, /var, /opt... are read-only.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
prefix=/usr
dest=$(mktemp -d "$build/install-test.XXXXXX")
trap 'rm -rf "$dest"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# The install, under a read-only system where we can make one.
guard=""
if [ "$(id -u)" = 0 ] && command -v unshare > /dev/null; then
	for d in /usr /etc /var /opt /srv /boot /home /root /lib /lib64 /bin /sbin; do
		[ -d "$d" ] && [ ! -L "$d" ] || continue
		case "$build/" in "$d"/*) continue ;; esac
		guard="$guard $d"
	done
fi
if [ -n "$guard" ]; then
	unshare --mount --propagation private sh -c '
		for d in $1; do
			mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" || exit 99
		done
		shift
		sh "$@"' sh "$guard" "$top/scripts/install.sh" "$build" "$dest" "$prefix" \
		> "$dest.log" 2>&1 || { cat "$dest.log"; bad "install failed (read-only:$guard)"; }
else
	echo "not root: the install runs without read-only system folders"
	sh "$top/scripts/install.sh" "$build" "$dest" "$prefix" > "$dest.log" 2>&1 ||
		{ cat "$dest.log"; bad "install failed"; }
fi
rm -f "$dest.log"

# What must land, and nothing else.
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/kmod/dkms.conf")
want=$(mktemp)
trap 'rm -rf "$dest" "$want"' EXIT
{
	for b in bin/ftvmm sbin/ftctl sbin/ftlogd sbin/ftlog-gen sbin/ftlog-check \
		 sbin/ftlogd-mkcert sbin/fthbd lib/systemd/system/ftlogd.service; do
		echo "$prefix/$b"
	done
	for md in "$top"/Documentation/man/*.[1-8].md; do
		page=$(basename "$md" .md)
		echo "$prefix/share/man/man${page##*.}/$page"
	done
	for c in ftctl ftvmm ftlogd; do
		echo "$prefix/share/bash-completion/completions/$c"
	done
	for h in "$top"/uapi/linux/*.h; do
		echo "$prefix/include/linux/$(basename "$h")"
		echo "/usr/src/kvm-ft-$ver/uapi/linux/$(basename "$h")"
	done
	for f in "$top"/kmod/ft_*.c "$top"/kmod/*.h "$top/kmod/Kbuild" \
		 "$top/kmod/Makefile" "$top/kmod/dkms.conf"; do
		echo "/usr/src/kvm-ft-$ver/$(basename "$f")"
	done
	for d in "$top"/Documentation/*.md; do
		echo "$prefix/share/doc/kvm-ft/$(basename "$d")"
	done
} | sort > "$want"
(cd "$dest" && find . ! -type d | sed 's/^\.//' | sort) > "$want.got"
missing=$(comm -23 "$want" "$want.got")
extra=$(comm -13 "$want" "$want.got")
[ -z "$missing" ] || bad "not installed:" $missing
[ -z "$extra" ] || bad "installed, not expected:" $extra
rm -f "$want.got"

for b in bin/ftvmm sbin/ftctl sbin/ftlogd sbin/ftlogd-mkcert sbin/fthbd; do
	[ -x "$dest$prefix/$b" ] || bad "$prefix/$b is not executable"
done
# man finds the installed pages by name.
for page in ftctl ftctl-session ftlogd ftvmm; do
	MANPATH=$dest$prefix/share/man man -w "$page" > /dev/null 2>&1 ||
		bad "man -w $page does not find the installed page"
done
# The completion files define their commands' completion.
for c in ftctl ftvmm ftlogd; do
	bash --norc --noprofile -c "_init_completion() { :; }
		. '$dest$prefix/share/bash-completion/completions/$c'
		complete -p $c" > /dev/null 2>&1 || bad "completion for $c is not defined"
done
n=$(wc -l < "$want")
[ $fail -eq 0 ] && echo "install: $n files under DESTDIR, none outside (read-only:$guard)"
exit $fail
