/*
 * wakeup.pml - the loop's sleep handshake (src/queue.c), checked with spin.
 *
 * Two producers post N events each (and one of them asks the loop to quit
 * at the end); the consumer takes everything per pass and sleeps when the
 * queue is empty. Claims checked:
 *   - no lost wake-up: the consumer never blocks forever with events queued
 *     or a quit pending (spin reports such a state as an invalid end state);
 *   - one wake-up per sleep: producers write the eventfd at most once per
 *     time the consumer went to sleep.
 * The queue lock is modelled by atomic sequences: everything done under it
 * in queue.c is one atomic step here.
 *
 * Run: spin -a wakeup.pml && cc -o pan pan.c && ./pan -m100000
 */
#define N 3

byte queued = 0;      /* events in the list (guarded by the lock) */
bool sleeping = 0;    /* guarded by the lock */
byte efd = 0;         /* eventfd counter */
bool quit = 0;        /* exit_pending: set before the quitter takes the lock */
byte delivered = 0;
byte sleeps = 0;
byte writes = 0;

proctype producer(bool quitter)
{
	byte i = 0;
	bool wake;
	do
	:: i < N ->
		atomic {                       /* relay__queue_push_locked */
			queued++;
			wake = sleeping;
			sleeping = 0
		};
		if
		:: wake -> efd++; writes++     /* relay__queue_wake, after unlock */
		:: else -> skip
		fi;
		i++
	:: else -> break
	od;
	if
	:: quitter ->
		quit = 1;                      /* relay_thread_exit: flag first */
		atomic {                       /* relay__queue_kick */
			wake = sleeping;
			sleeping = 0
		};
		if
		:: wake -> efd++; writes++
		:: else -> skip
		fi
	:: else -> skip
	fi
}

active proctype consumer()
{
	bool sleep;
	do
	:: atomic {                            /* relay__queue_take_all */
		delivered = delivered + queued;
		queued = 0
	   };
	   if
	   :: quit && delivered == 2 * N -> break
	   :: else -> skip
	   fi;
	   atomic {                            /* relay__queue_prepare_sleep */
		sleep = (queued == 0 && !quit);
		sleeping = sleep;
		if
		:: sleep -> sleeps++
		:: else -> skip
		fi
	   };
	   if
	   :: sleep ->
		(efd > 0);                     /* epoll_wait(-1): only the eventfd wakes it */
		efd = 0;                       /* relay__queue_clear_wake */
		atomic { sleeping = 0 }        /* relay__queue_awake */
	   :: else -> skip
	   fi
	od;
	assert(delivered == 2 * N);
	assert(writes <= sleeps)
}

init
{
	run producer(1);
	run producer(0)
}
