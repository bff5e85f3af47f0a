#!/bin/sh
# The daemon itself: --check reports a bad configuration with file and
# line; systemd readiness (READY=1 on $NOTIFY_SOCKET); the control socket
# answers bad requests with an error and keeps serving.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: needs python3"; exit $SKIP; }
need_root
add_link 0
add_link 1
"$MKCERT" ca "$T/ca"
"$MKCERT" host "$T/ca" "$T" a
conf a 1 b 2
"$BIN/ftlogd" --config "$T/a.conf" --check >/dev/null || fail "good config refused"
printf 'bogus = 1\n' >>"$T/a.conf"
"$BIN/ftlogd" --config "$T/a.conf" --check 2>"$T/check.err" && fail "bad config accepted"
grep -q "a.conf:.*unknown key \"bogus\"" "$T/check.err" || fail "message: $(cat "$T/check.err")"
conf a 1 b 2

python3 - "$T/notify" >"$T/notify.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(20)
print(s.recv(4096).decode())
PY
NP=$!
for _ in $(seq 1 100); do [ -S "$T/notify" ] && break; sleep 0.05; done
NOTIFY_SOCKET="$T/notify" start_ftlogd a "$NA"
wait $NP || fail "no notification"
grep -q "READY=1" "$T/notify.out" || fail "notify: $(cat "$T/notify.out")"

python3 - "$T/a.sock" >"$T/ctl.out" <<'PY' || fail "control: $(cat "$T/ctl.out")"
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
def ask(raw):
    s.send(raw)
    return json.loads(s.recv(65536))
cases = [
    (b"not json", "bad request: message is not valid JSON"),
    (b"[1]", "bad request: message is not a JSON object"),
    (b"{}", "\"cmd\" (a string) is required"),
    (b'{"cmd": "fly"}', "unknown command \"fly\""),
    (b'{"cmd": "register", "session": "x/y", "peer": "b"}', "bad session name"),
    (b'{"cmd": "register", "session": "vm", "peer": "zz"}', "no FT logging path to peer"),
    (b'{"cmd": "register", "session": "vm", "peer": "b"}', "pass the ring memfd"),
    (b'{"cmd": "attach", "session": "vm"}', "no secondary session vm"),
    (b'{"cmd": "show", "session": 7}', "\"session\" (a string) is required"),
    (b'{"cmd": "events", "after": -1}', "\"after\" must be an event id"),
    (b"x" * 70000, "bad request: message longer than"),
]
for raw, want in cases:
    r = ask(raw)
    assert r["ok"] is False and want in r["error"], (raw[:40], r)
    print("refused:", r["error"])
r = ask(b'{"cmd": "ping", "tag": 42}')
assert r["ok"] and r["host"] == "a" and r["tag"] == 42, r
r = ask(b'{"cmd": "list"}')
assert r["ok"] and r["sessions"] == [], r
print("still serving")
PY
kill -0 ${PIDS##* } || fail "ftlogd died"
cat "$T/ctl.out"
