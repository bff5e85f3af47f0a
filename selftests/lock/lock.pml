/*
 * lock.pml - model of kvm-ft's on-disk lock (Documentation/lock.md) for
 * the spin model checker: two hosts contend for one resource on shared
 * storage, using only atomic sector reads and writes.
 *
 * Modelled: host-lease renewals (read the host slots, write our heartbeat,
 * extend the deadline only if the write completed within T and before the
 * old deadline), a write landing any time within T of its issue, any
 * scheduling (a host may stall for any number of ticks: SIGSTOP, slow
 * I/O completion), crashes at any point between operations (in-flight
 * writes still land), release, and concurrent acquisition (write our
 * claim, then re-read the other's claim and heartbeat). Time is a global
 * tick counter; each host measures intervals only on it.
 * Not modelled here (see the unit tests and the simulator): host id
 * acquisition, clock drift and jumps, many hosts.
 *
 * Property: never two hosts running the VM at once, where a host runs it
 * while it believes it owns the resource and its lease deadline plus the
 * fence margin F has not passed (the fence kills the VM by then).
 *
 * Knobs (spin -D...): DEAD, the silence after which a heartbeat is judged
 * stale (the implementation uses L+T+F plus drift and gap margins; the
 * model shows L+max(T,F) is already enough with exact clocks, and L is
 * not); NO_RECHECK drops the re-read after writing a claim. The broken
 * variants must yield a counterexample (run_model.sh expect-fail).
 */
#define L 3        /* lease, ticks (one tick = one renewal period) */
#define T 1        /* longest I/O that counts */
#define F 1        /* fence margin */
#ifndef DEAD
#define DEAD (L + T + F)
#endif
#ifndef MAXT
#define MAXT 8     /* bound on time: keeps the search finite (~7M states) */
#endif

byte now;
byte landed[2];    /* when each host's latest heartbeat reached the disk */
bool claim[2];     /* each host's claim sector for the resource */
bool own[2];       /* host believes it owns the resource */
byte deadline[2];  /* lease deadline */
bool inflight[2];  /* a heartbeat write not yet on the medium */
byte wstart[2];

#define running(h) (own[h] && now < deadline[h] + F)

/* Time passes, but not past a write's latest landing time. */
active proctype Clock()
{
	do
	:: now < MAXT && !(inflight[0] && now >= wstart[0] + T) &&
	   !(inflight[1] && now >= wstart[1] + T) -> now++
	:: now >= MAXT -> break
	od
}

/*
 * The property, checked in every reachable state. VACUITY instead asserts
 * that no takeover ever happens (a host owning while the other, crashed
 * or fenced, still believes it owns): spin must refute it, which shows
 * the model does reach takeovers.
 */
active proctype Safety()
{
#ifdef VACUITY
end:	atomic { own[0] && own[1] -> assert(false) }
#else
end:	atomic { running(0) && running(1) -> assert(false) }
#endif
}

proctype Host(byte h)
{
	byte o = 1 - h;
	bool busy;

/*
 * A reader judges the other host's heartbeat stale once its value has
 * been unchanged for DEAD since the reader first saw it. The model uses
 * the moment the value landed instead, which is never later: stale
 * earlier than any real reader (an over-approximation, sound for
 * safety), and no per-reader history to blow up the state space.
 */
#define OBSERVE skip
#define STALE (now - landed[o] >= DEAD)

loop:
	if
	:: now < MAXT -> goto renew
	:: now < MAXT && !own[h] -> goto acquire
	:: own[h] -> own[h] = false; claim[h] = false; goto loop
	:: goto crash
	fi;

renew:
	if
	:: now >= deadline[h] -> own[h] = false; goto lost
	:: else -> skip
	fi;
	atomic { OBSERVE; inflight[h] = true; wstart[h] = now };
	atomic { landed[h] = now; inflight[h] = false }; /* lands within T */
	atomic {                                       /* completes later */
		if
		:: now - wstart[h] <= T && now < deadline[h] -> deadline[h] = wstart[h] + L
		:: else -> skip
		fi;
		wstart[h] = 0
	};
	goto loop;

acquire:
	busy = claim[o];                               /* read the claim row */
	atomic {                                       /* then the host slots */
		OBSERVE;
		if
		:: busy && !STALE -> busy = false; goto loop
		:: else -> busy = false
		fi
	};
	claim[h] = true;                               /* write our claim */
#ifndef NO_RECHECK
	busy = claim[o];                               /* re-read the row */
	atomic {
		OBSERVE;
		if
		:: busy && !STALE -> busy = false; claim[h] = false; goto loop
		:: else -> busy = false
		fi
	};
#endif
	atomic {
		if
		:: now < deadline[h] -> own[h] = true  /* owner while valid */
		:: else -> skip
		fi
	};
	goto loop;

lost:
crash:
	skip
}

init
{
	atomic {
		deadline[0] = L;
		deadline[1] = L;
		run Host(0);
		run Host(1)
	}
}
