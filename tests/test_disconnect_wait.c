/*
 * test_disconnect_wait.c - D6, strictly:
 *
 *   int relay_disconnect_wait(relay_connection c, int timeout_ms);
 *
 *     Disconnects c (as relay_disconnect), then waits until the calls of
 *     c already running in other threads have returned, at most
 *     timeout_ms (negative: no limit). Returns 0; RELAY_EDEADLOCK with one
 *     diagnostic when called from inside c's own slot (it would wait for
 *     itself); -ETIMEDOUT when calls were still running after timeout_ms;
 *     -ENOENT for an id that is not (or no longer) a connection.
 *
 * After relay_disconnect returns, relay begins no new call of the
 * connection; relay_disconnect_wait adds that none is still running (or
 * still about to enter its slot) anywhere, so the caller may free what the
 * slot uses (test_disconnect.c has the race tests of both).
 * No test asserts on timing: counts, order, thread identity, return
 * codes; timeouts are safety nets, except where a timeout is the API
 * under test (and then only its result code is checked).
 */
#define OBJTEST_EXTRA_CHECKS 1
#include "objtest.h"
#include "racetest.h"

static atomic_int g_helper_errors;
#define HCHECK(cond)                                                           \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: helper check failed: %s\n",   \
				__FILE__, __LINE__, #cond);                    \
			atomic_fetch_add(&g_helper_errors, 1);                 \
		}                                                              \
	} while (0)

static atomic_int g_inside;        /* calls of the slot running now */
static atomic_int g_disconnected;  /* set once relay_disconnect_wait returned */
static atomic_long g_calls, g_late;

/* Marks its whole run, and stays inside a while so that disconnects land
 * while it runs. */
static void slow_slot(obj *self)
{
	(void)self;
	atomic_fetch_add(&g_inside, 1);
	if (atomic_load(&g_disconnected))
		atomic_fetch_add(&g_late, 1);
	atomic_fetch_add(&g_calls, 1);
	race_nap_us(200);
	atomic_fetch_sub(&g_inside, 1);
}

static int noop_job(void *p)
{
	(void)p;
	return 0;
}

typedef struct emitter {
	obj *s;
	long pace_us;              /* queued: a pause between emits, no backlog */
	atomic_int quit;
	atomic_long emits;
} emitter;

static void *emit_loop(void *p)
{
	emitter *e = p;
	while (!atomic_load(&e->quit)) {
		relay_emit(e->s, ping);
		atomic_fetch_add(&e->emits, 1);
		if (e->pace_us)
			race_nap_us(e->pace_us);
	}
	return NULL;
}

/* D6 with relay_disconnect_wait: a worker thread emits in a loop through
 * a direct connection (the slot runs in the worker). When
 * relay_disconnect_wait returns 0, no call of the slot is running
 * anywhere, and none starts afterwards. */
static void test_D6_disconnect_wait_no_direct_call_running_after_return(void **state)
{
	(void)state;
	obj *s = new_obj(NULL, 1);
	obj *r = new_obj(NULL, 2);
	emitter e = { .s = s };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, emit_loop, &e), 0);
	race_budget b;
	race_budget_init(&b, 100, 2000);
	long running_after = 0, late = 0;
	while (race_budget_next(&b)) {
		atomic_store(&g_disconnected, 0);
		long base = atomic_load(&g_calls);
		relay_connection id = 0;
		assert_int_equal(relay_connect_ex(s, ping, r, slow_slot, RELAY_DIRECT, 0u, &id), 0);
		WAIT_UNTIL(atomic_load(&g_calls) > base);
		assert_int_equal(relay_disconnect_wait(id, SAFETY_MS), 0);
		if (atomic_load(&g_inside) != 0)
			running_after++;
		atomic_store(&g_disconnected, 1);
		long before = atomic_load(&g_late);
		long emits = atomic_load(&e.emits);
		WAIT_UNTIL(atomic_load(&e.emits) >= emits + 2);
		late += atomic_load(&g_late) - before;
		assert_int_equal(relay_disconnect(id), -ENOENT);   /* it is gone */
	}
	atomic_store(&e.quit, 1);
	pthread_join(th, NULL);
	assert_int_equal(relay_object_destroy(&r->base), 0);
	assert_int_equal(relay_object_destroy(&s->base), 0);
	if (running_after || late)
		fail_msg("%ld of %ld trials: a call still running after relay_disconnect_wait; "
			 "%ld calls started after it", running_after, b.done, late);
}

/* The same for queued calls, delivered in the receiver's thread while a
 * worker floods the connection. */
static void test_D6_disconnect_wait_no_queued_call_running_after_return(void **state)
{
	(void)state;
	relay_thread *t = start_thread("d6-wait-q");
	obj *r = worker_obj(t, 2);
	obj *s = new_obj(NULL, 1);
	emitter e = { .s = s, .pace_us = 100 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, emit_loop, &e), 0);
	race_budget b;
	race_budget_init(&b, 100, 2000);
	long running_after = 0, late = 0;
	while (race_budget_next(&b)) {
		atomic_store(&g_disconnected, 0);
		long base = atomic_load(&g_calls);
		relay_connection id = 0;
		assert_int_equal(relay_connect_ex(s, ping, r, slow_slot, RELAY_QUEUED, 0u, &id), 0);
		WAIT_UNTIL(atomic_load(&g_calls) > base);
		assert_int_equal(relay_disconnect_wait(id, SAFETY_MS), 0);
		if (atomic_load(&g_inside) != 0)
			running_after++;
		atomic_store(&g_disconnected, 1);
		long before = atomic_load(&g_late);
		run_in(r, noop_job, NULL);   /* whatever was queued has been met */
		late += atomic_load(&g_late) - before;
	}
	atomic_store(&e.quit, 1);
	pthread_join(th, NULL);
	stop_thread(t);
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	assert_int_equal(relay_object_destroy(&s->base), 0);
	if (running_after || late)
		fail_msg("%ld of %ld trials: a call still running after relay_disconnect_wait; "
			 "%ld calls started after it", running_after, b.done, late);
}

/* From inside the connection's own slot, waiting for its calls to return
 * would wait for itself: refused with RELAY_EDEADLOCK and one diagnostic,
 * never a hang. */
static relay_connection g_own_id;
static atomic_int g_own_rc = 1;

static void self_waiting_slot(obj *self)
{
	(void)self;
	atomic_store(&g_own_rc, relay_disconnect_wait(g_own_id, SAFETY_MS));
}

static void test_D6_disconnect_wait_from_own_slot_refused(void **state)
{
	(void)state;
	obj *s = new_obj(NULL, 1);
	obj *r = new_obj(NULL, 2);
	assert_int_equal(relay_connect_ex(s, ping, r, self_waiting_slot, RELAY_AUTO, 0u, &g_own_id), 0);
	diag_reset();
	assert_int_equal(relay_emit(s, ping), 0);   /* direct: r lives here */
	assert_int_equal(atomic_load(&g_own_rc), RELAY_EDEADLOCK);
	expect_one_diag(RELAY_EDEADLOCK, NULL);
	/* Refused means nothing was done: it is still connected. */
	assert_int_equal(relay_disconnect(g_own_id), 0);
	/* The same from the slot running in a worker thread (queued there). */
	relay_thread *t = start_thread("d6-wait-self");
	obj *w = worker_obj(t, 3);
	assert_int_equal(relay_connect_ex(s, ping, w, self_waiting_slot, RELAY_QUEUED, 0u, &g_own_id), 0);
	atomic_store(&g_own_rc, 1);
	diag_reset();
	assert_int_equal(relay_emit(s, ping), 0);
	run_in(w, noop_job, NULL);
	assert_int_equal(atomic_load(&g_own_rc), RELAY_EDEADLOCK);
	expect_one_diag(RELAY_EDEADLOCK, NULL);
	stop_thread(t);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(relay_object_destroy(&r->base), 0);
	assert_int_equal(relay_object_destroy(&s->base), 0);
}

/* A call that does not return within timeout_ms: -ETIMEDOUT, and the
 * connection is disconnected all the same (no new call starts). */
static atomic_int g_block_release, g_block_entered, g_block_calls;

static void blocking_slot(obj *self)
{
	(void)self;
	atomic_fetch_add(&g_block_calls, 1);
	atomic_store(&g_block_entered, 1);
	const uint64_t dl = now_ms() + SAFETY_MS;
	while (!atomic_load(&g_block_release) && now_ms() < dl)
		sleep_ms(1);
}

static void test_D6_disconnect_wait_times_out(void **state)
{
	(void)state;
	relay_thread *t = start_thread("d6-wait-to");
	obj *r = worker_obj(t, 2);
	obj *s = new_obj(NULL, 1);
	relay_connection id = 0;
	assert_int_equal(relay_connect_ex(s, ping, r, blocking_slot, RELAY_QUEUED, 0u, &id), 0);
	assert_int_equal(relay_emit(s, ping), 0);
	assert_int_equal(relay_emit(s, ping), 0);   /* queued behind: must not run */
	WAIT_UNTIL(atomic_load(&g_block_entered));
	assert_int_equal(relay_disconnect_wait(id, 20), -ETIMEDOUT);
	assert_int_equal(relay_disconnect(id), -ENOENT);   /* disconnected anyway */
	atomic_store(&g_block_release, 1);
	run_in(r, noop_job, NULL);
	assert_int_equal(atomic_load(&g_block_calls), 1);
	stop_thread(t);
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	assert_int_equal(relay_object_destroy(&s->base), 0);
}

/* Unknown ids: 0, one never handed out, one already disconnected. */
static void test_D6_disconnect_wait_unknown_id(void **state)
{
	(void)state;
	assert_int_equal(relay_disconnect_wait(0, 10), -ENOENT);
	assert_int_equal(relay_disconnect_wait((relay_connection)1 << 62, 10), -ENOENT);
	obj *s = new_obj(NULL, 1);
	obj *r = new_obj(NULL, 2);
	relay_connection id = 0;
	assert_int_equal(relay_connect_ex(s, ping, r, on_ping, RELAY_AUTO, 0u, &id), 0);
	assert_int_equal(relay_disconnect_wait(id, 10), 0);   /* nothing running: at once */
	assert_int_equal(relay_disconnect_wait(id, 10), -ENOENT);
	assert_int_equal(relay_emit(s, ping), 0);
	assert_int_equal(atomic_load(&r->hits), 0);
	assert_int_equal(relay_object_destroy(&r->base), 0);
	assert_int_equal(relay_object_destroy(&s->base), 0);
	assert_int_equal(atomic_load(&g_helper_errors), 0);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_D6_disconnect_wait_no_direct_call_running_after_return, setup, teardown),
		cmocka_unit_test_setup_teardown(test_D6_disconnect_wait_no_queued_call_running_after_return, setup, teardown),
		cmocka_unit_test_setup_teardown(test_D6_disconnect_wait_from_own_slot_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_D6_disconnect_wait_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_D6_disconnect_wait_unknown_id, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
