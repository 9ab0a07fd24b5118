/*
 * wakeup.pml - the loop's sleep handshake (src/queue.c), checked with spin.
 *
 * Posts: two producers commit N records each to one consumer, which
 * delivers what is committed and sleeps when nothing is. Built with
 * -DQUIT instead, one thread asks the loop to quit (relay_thread_exit)
 * and the consumer must wake up for it. Each Promela statement is one
 * atomic step and steps interleave in one total order: the sequentially
 * consistent execution that queue.c's seq_cst operations enforce (the
 * commit and the sleep announcement are exchanges, the loads of the other
 * side are seq_cst loads). Claims checked, in both builds:
 *   - no lost wake-up: the consumer never blocks forever with records
 *     committed or a quit pending (spin reports it as an invalid end state);
 *   - one wake-up per announced sleep: the eventfd is written at most once
 *     per time the consumer announced it would sleep, however many records
 *     are committed (a write may find the consumer awake again: it costs
 *     one empty pass, never a lost record).
 *
 * Built with -DEMBED, the consumer is a host loop driving relay through
 * the embedding API (src/embed.c): relay_loop_prepare arms and then looks
 * (the same half of the pair), the host's poll on the loop fd is the
 * sleep, and relay_loop_dispatch clears the flag and reads the eventfd
 * before it delivers. The same claims hold (-DEMBED, alone or with
 * -DQUIT).
 *
 * Run: spin -a [-DQUIT] [-DEMBED] wakeup.pml && cc -o pan pan.c && ./pan -m100000
 * (models/check runs all four, and checks that three wrong variants
 * fail.)
 */
#define N 3

byte produced = 0;    /* records committed, both rings together */
byte consumed = 0;
bool sleeping = 0;
byte efd = 0;         /* eventfd counter */
bool quit = 0;        /* exit_pending */
int announces = 0;    /* int: the consumer may announce and cancel often */
int writes = 0;

/* relay__queue_wake_if_sleeping / the tail of commit_and_wake: load the
 * flag; if set, one exchange decides which thread writes. */
inline wake_if_sleeping()
{
	if
	:: sleeping ->
		atomic {
			wake = sleeping;    /* atomic_exchange(&sleeping, false) */
			sleeping = 0
		};
		if
		:: wake -> efd++; writes++
		:: else -> skip
		fi
	:: else -> skip
	fi
}

proctype producer()
{
	byte i = 0;
	bool wake;
	do
	:: i < N ->
		produced++;                    /* commit: seq_cst exchange */
		wake_if_sleeping();
		i++
	:: else -> break
	od
}

proctype quitter()
{
	bool wake;
	quit = 1;                              /* relay_thread_exit: the flag first */
	wake_if_sleeping()                     /* relay__loop_wake */
}

#ifdef EMBED
active proctype consumer()
{
	bool busy;
	do
	:: atomic { sleeping = 1; announces++ }  /* relay_loop_prepare: arm, */
	   busy = (produced != consumed || quit);  /* then look */
	   if
	   :: busy -> sleeping = 0             /* "ready now": no poll */
	   :: else -> (efd > 0)                /* the host polls the loop fd */
	   fi;
	   sleeping = 0;                       /* relay_loop_dispatch: awake, */
	   efd = 0;                            /* read the eventfd (fd quiet), */
	   consumed = produced;                /* deliver what is committed */
	   if
#ifdef QUIT
	   :: quit -> break                    /* the quit hook stops the host */
#else
	   :: consumed == 2 * N -> break
#endif
	   :: else -> skip
	   fi
	od;
	assert(writes <= announces)
}
#else
active proctype consumer()
{
	bool busy;
	do
	:: consumed = produced;                /* deliver what is committed */
	   if
#ifdef QUIT
	   :: quit -> break                    /* the loop returns */
#else
	   :: consumed == 2 * N -> break
#endif
	   :: else -> skip
	   fi;
	   atomic { sleeping = 1; announces++ }  /* relay__queue_prepare_sleep */
	   busy = (produced != consumed || quit);
	   if
	   :: busy -> sleeping = 0
	   :: else ->
		(efd > 0);                     /* epoll_wait(-1): only the eventfd wakes it */
		efd = 0;                       /* relay__queue_clear_wake */
		sleeping = 0                   /* relay__queue_awake */
	   fi
	od;
	assert(writes <= announces)
}
#endif

init
{
#ifdef QUIT
	run quitter();
#else
	run producer();
	run producer();
#endif
}
