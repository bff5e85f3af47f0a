#!/bin/sh
# md2man.sh IN.md OUT VERSION - one man page, roff from its Markdown source.
# The source starts "# NAME(SECTION)" (a heading for anyone reading the
# Markdown), which becomes the title line go-md2man wants; each line of
# SYNOPSIS gets a hard break so that its forms stay one per line.
set -eu
in=$1 out=$2 ver=$3
awk -v ver="$ver" '
NR == 1 {
	if ($0 !~ /^# [a-z0-9-]+\([1-8]\)$/) {
		print FILENAME ": the first line must be \"# NAME(SECTION)\"" > "/dev/stderr"
		bad = 1
		exit 1
	}
	name = substr($0, 3); sec = name
	sub(/\(.*/, "", name); sub(/.*\(/, "", sec); sub(/\)/, "", sec)
	printf "%% %s %s \"\" \"kvm-ft %s\" \"kvm-ft Manual\"\n", toupper(name), sec, ver
	next
}
/^## / { synopsis = ($0 == "## SYNOPSIS") }
synopsis && NF && !/^## / { sub(/[ \t]+$/, ""); print $0 "  "; next }
{ print }
END { if (bad) exit 1 }
' "$in" > "$out.md"
go-md2man -in "$out.md" -out "$out"
rm -f "$out.md"
