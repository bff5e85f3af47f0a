#!/bin/sh
# Split brain: the channel between a and b is cut while both stay alive
# and both reach the public network. b sees the active go silent and
# tries to fail over, but the on-disk lock is still a's: b refuses, marks
# itself not synchronised, and never takes the public address. a keeps
# serving: once it gives up waiting for b's ACKs (its degrade time), the
# client's transactions are acknowledged again. Sampled every 50 ms: the
# address is never on both servers, and always on a.
. "$(dirname "$0")/lib.sh"
setup
start_pair
client 60
wait_acked 50 20 || fail "the client got $(acked) acknowledgements from a"
ip -n "$NB" link set hb0 down
t0=$(now_ms)
while [ $(( $(now_ms) - t0 )) -lt 9000 ]; do
	has_pub "$NB" && fail "b took $PUB while a holds it"
	has_pub "$NA" || fail "a lost $PUB"
	sleep 0.05
done
grep -q "failover_refused" "$T/b.log" || fail "b did not try and refuse the failover"
show b | grep -q '"synchronised":false' || fail "b still claims to be synchronised: $(show b)"
show b | grep -q '"role":"passive"' || fail "b is not passive: $(show b)"
grep -q "peer_unsynchronised" "$T/a.log" || fail "a did not stop waiting for b"
n=$(acked)
wait_acked $((n + 20)) 10 || fail "a stopped serving after the cut ($(acked) acked)"
# The channel comes back: b stays passive and not synchronised (a
# resync is needed, not implemented), and still never takes the address.
ip -n "$NB" link set hb0 up
sleep 3
has_pub "$NB" && fail "b took $PUB after the channel came back"
show b | grep -q '"synchronised":false' || fail "b resynchronised without a resync: $(show b)"
echo "partition: b refused: $(grep failover_refused "$T/b.log" | sed 's/.*refused: //' | head -n 1)"
