#!/bin/sh
# --run CMD: the guarded command (standing in for the VM) dies when the
# lease ends even if the holder itself is frozen: its watchdog process
# kills it at the deadline, before the other host takes over. The command
# exiting releases the lock.
. "$(dirname "$0")/lib.sh"
setup "$1"

gone() { s=$(ps -o stat= -p "$1" 2>/dev/null | cut -c1); [ -z "$s" ] || [ "$s" = Z ]; }

# shellcheck disable=SC2016
hold a 1 vm1 --run 'echo $$ >'"$WORK"'/vm.pid; exec sleep 1000'
wait_line a "acquired vm1" 10
i=0
until [ -s "$WORK/vm.pid" ]; do i=$((i + 1)); [ $i -le 100 ] || fail "no vm.pid"; sleep 0.05; done
vm=$(cat "$WORK/vm.pid")
gone "$vm" && fail "guarded command not running"
hold b 2 vm1 --timeout 60
sleep 0.3
kill -STOP "$(pid_of a)"
wait_line b "acquired vm1" 30
gone "$vm" || fail "guarded command still running when the other host took over"
kill -CONT "$(pid_of a)"
wait_exit a 10
[ $RC = 4 ] || fail "frozen holder exit $RC after resume, want 4"
grep -qx "lost vm1" "$WORK/a.out" || fail "no lost line"
kill -TERM "$(pid_of b)"
wait_exit b 10

# The command's end releases the lock; its failure is reported.
hold c 3 vm2 --run 'sleep 0.5'
wait_exit c 20
[ $RC = 0 ] || fail "exit $RC after the command succeeded"
grep -qx "released vm2" "$WORK/c.out" || fail "no release after the command ended"
hold d 4 vm2 --run 'exit 3'
wait_exit d 20
[ $RC = 1 ] || fail "exit $RC after the command failed, want 1"
"$FTCTL" lock acquire "$AREA" vm2 --host-id 5 --timeout 1 >/dev/null 2>&1 ||
	fail "vm2 still held after its command ended"
pass
