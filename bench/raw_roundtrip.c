/*
 * raw_roundtrip.c - case B's limits: two threads ping-pong one int64_t
 * with no library, timed per round trip in the pinging thread.
 *
 * Variants (--variant):
 *   eventfd  each thread blocks in read() on its own eventfd; the peer
 *            wakes it with write() (what an eventfd loop costs at least)
 *   futex    each side waits with FUTEX_WAIT on its own word and is woken
 *            with FUTEX_WAKE (a condvar without the mutex)
 *   spin     each side spins on its word (sched_yield now and then, so
 *            that pinned to one core the peer still gets to run)
 * --pin same|diff as for every round trip program.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

enum mode { EVENTFD, FUTEX, SPIN };

/* One side's mailbox: the last value sent to it. */
struct side {
	_Alignas(64) _Atomic int32_t word;   /* futex and spin: value + 1, 0 = empty */
	int efd;                             /* eventfd: carries value + 1 */
};

static struct bench_args args;
static enum mode mode;
static struct side sides[2];

static void send_to(struct side *s, int64_t v)
{
	uint64_t x = (uint64_t)v + 1;

	if (mode == EVENTFD) {
		if (write(s->efd, &x, sizeof x) != sizeof x)
			bench_fail("eventfd write: %s", strerror(errno));
		return;
	}
	/* release: pairs with the receiver's acquire load of word. */
	atomic_store_explicit(&s->word, (int32_t)x, memory_order_release);
	if (mode == FUTEX)
		syscall(SYS_futex, &s->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static int64_t wait_futex(struct side *s)
{
	int32_t w;

	while (!(w = atomic_exchange_explicit(&s->word, 0, memory_order_acquire)))
		syscall(SYS_futex, &s->word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return (int64_t)w - 1;
}

static int64_t wait_spin(struct side *s)
{
	int32_t w;
	unsigned spins = 0;

	while (!(w = atomic_exchange_explicit(&s->word, 0, memory_order_acquire)))
		if (++spins % 64 == 0)
			sched_yield();
	return (int64_t)w - 1;
}

static int64_t receive(struct side *s)
{
	uint64_t x;

	if (mode == FUTEX)
		return wait_futex(s);
	if (mode == SPIN)
		return wait_spin(s);
	if (read(s->efd, &x, sizeof x) != sizeof x)
		bench_fail("eventfd read: %s", strerror(errno));
	return (int64_t)x - 1;
}

/* Values stay below 10^6 so the futex word carries them; STOP ends the
 * ponger. */
#define STOP 999999999

static void *ponger(void *arg)
{
	(void)arg;
	bench_pin_apply(args.pin, 1);
	for (;;) {
		int64_t v = receive(&sides[1]);
		if (v == STOP)
			return NULL;
		send_to(&sides[0], v + 1);
	}
}

static void ping_pong(struct bench_lat *lat, long warmup)
{
	int64_t v = 0;

	for (long i = 0; i < warmup + args.count; i++) {
		uint64_t t0 = bench_now_ns();
		send_to(&sides[1], v);
		int64_t back = receive(&sides[0]);
		uint64_t t1 = bench_now_ns();
		if (back != v + 1)
			bench_fail("raw: pong carried %lld, expected %lld", (long long)back,
				   (long long)v + 1);
		v = (back + 1) % 1000000;
		if (i >= warmup)
			bench_lat_add(lat, t1 - t0);
	}
}

int main(int argc, char **argv)
{
	pthread_t t;
	struct bench_lat lat;

	bench_parse(argc, argv, &args, "roundtrips", 100000, "eventfd|futex|spin");
	const char *variant = args.variant;
	mode = !strcmp(variant, "eventfd") ? EVENTFD : !strcmp(variant, "futex") ? FUTEX : SPIN;
	for (int i = 0; i < 2; i++)
		if ((sides[i].efd = eventfd(0, EFD_CLOEXEC)) < 0)
			bench_fail("eventfd: %s", strerror(errno));

	bench_pin_apply(args.pin, 0);
	bench_lat_init(&lat, args.count);
	if (pthread_create(&t, NULL, ponger, NULL))
		bench_fail("pthread_create failed");
	ping_pong(&lat, args.count / 100 + 10);
	send_to(&sides[1], STOP);
	pthread_join(t, NULL);

	bench_lat_report(&lat, &args, "B", "raw", variant);
	return 0;
}
