#!/bin/sh
# Who may use ftlogd's control socket (Documentation/ftlogd.md, "Control
# socket"), one case per run (argument):
#   root   the default configuration (root only): a non-root uid is refused
#          even when the socket file's mode would let it connect; root is
#          served
#   owner  control_group = 64999: uid 65534 (primary group 64999) and uid
#          65533 (supplementary group 64999) may use the socket; a session
#          belongs to the uid that registered it (or attached to it first):
#          the other may not unregister it or attach to it; root may
#          act on any session
. "$(dirname "$0")/lib.sh"
command -v setpriv >/dev/null || { echo "SKIP: needs setpriv"; exit $SKIP; }
what=$1
G=64999
case $what in
root) setup_hosts ;;
owner) setup_hosts "control_group = $G" ;;
*) echo "usage: $0 root|owner" >&2; exit 2 ;;
esac
chmod 755 "$T"
ask() { "$BIN/ftlog-hostile" ask "$@"; } # SOCKET JSON: the reply or "error: ..."
A="setpriv --reuid=65534 --regid=$G --clear-groups"
B="setpriv --reuid=65533 --regid=65533 --groups=$G"

case $what in
root)
	chmod 666 "$T/a.sock" # as if the administrator had opened it up
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN/ftlog-hostile" ask \
		"$T/a.sock" '{"cmd": "ping"}')
	echo "uid 65534: $out"
	echo "$out" | grep -q "not authorized: uid 65534 is not root" ||
		fail "uid 65534 on a root-only control socket: $out"
	grep -q "client_refused: uid 65534" "$T/a.log" || fail "no client_refused event"
	out=$(ask "$T/a.sock" '{"cmd": "ping"}')
	echo "root: $out"
	echo "$out" | grep -q '"ok":true' || fail "root on the control socket: $out" ;;
owner)
	$A "$BIN/ftlog-gen" --socket "$T/a.sock" --peer b --session mine --count 100000 \
		--rate 2000 --ack-timeout 10 >"$T/gen.out" 2>&1 &
	PIDS="$PIDS $!"
	$A "$BIN/ftlog-check" --socket "$T/b.sock" --session mine --count 100000 \
		--timeout 100 >"$T/check.out" 2>&1 &
	PIDS="$PIDS $!"
	for _ in $(seq 1 100); do
		ask "$T/b.sock" '{"cmd": "show", "session": "mine"}' | grep -q '"stored_seq":[1-9]' &&
			break
		sleep 0.05
	done
	sleep 0.5 # ftlog-check attached
	out=$($B "$BIN/ftlog-hostile" ask "$T/a.sock" '{"cmd": "list"}')
	echo "$out" | grep -q '"session":"mine"' || fail "uid 65533 (group $G) list: $out"
	out=$($B "$BIN/ftlog-hostile" ask "$T/a.sock" '{"cmd": "unregister", "session": "mine"}')
	echo "uid 65533 unregisters uid 65534's session: $out"
	echo "$out" | grep -q "session mine belongs to uid 65534" ||
		fail "uid 65533 unregistered uid 65534's session: $out"
	out=$($B "$BIN/ftlog-hostile" ask "$T/b.sock" '{"cmd": "attach", "session": "mine"}')
	echo "uid 65533 attaches to uid 65534's session: $out"
	echo "$out" | grep -q "session mine belongs to uid 65534" ||
		fail "uid 65533 attached to uid 65534's session: $out"
	out=$($A "$BIN/ftlog-hostile" ask "$T/a.sock" '{"cmd": "unregister", "session": "mine"}')
	echo "$out" | grep -q '"ok":true' || fail "uid 65534 unregisters its session: $out"
	out=$(ask "$T/b.sock" '{"cmd": "unregister", "session": "mine"}')
	echo "$out" | grep -q '"ok":true' || fail "root unregisters uid 65534's session: $out" ;;
esac
exit 0
