#!/bin/sh
# man_sync.sh FTCTL DOCDIR - the man pages keep up with `ftctl help`:
# every object has a page (or is named in one) and is listed in
# ftctl.8.md, and every command of `ftctl OBJECT help` appears in the
# object's page.
set -u
ftctl=$1 man=$2/man
fail=0
objs=$("$ftctl" help | sed -n 's/.*OBJECT := { \(.*\) }.*/\1/p' | tr -d '|')
[ -n "$objs" ] || { echo "no object list in ftctl help"; exit 1; }
for o in $objs; do
	page=$man/ftctl-$o.8.md
	[ -f "$page" ] || page=$(grep -l "ftctl.* $o" "$man"/ftctl-*.8.md | head -n 1)
	if [ -z "$page" ]; then
		echo "object $o: no man page"; fail=1; continue
	fi
	grep -q "\`$o\`" "$man/ftctl.8.md" || { echo "object $o: not in ftctl.8.md"; fail=1; }
	# commands: the word after "ftctl OBJECT" in each usage line
	for c in $("$ftctl" $o help 2>&1 | sed -n "s/.*ftctl $o \([a-z][a-z-]*\).*/\1/p" | sort -u); do
		[ "$c" = help ] && continue
		grep -q "$c" "$page" || { echo "ftctl $o $c: not in $(basename "$page")"; fail=1; }
	done
done
[ $fail -eq 0 ] && echo "man pages in sync for: $objs"
exit $fail
