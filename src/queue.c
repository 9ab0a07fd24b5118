/*
 * queue.c - the event transport: a mutex-protected FIFO per receiving
 * thread, with a sleep handshake on an eventfd.
 *
 * Algorithm: a two-lock-free "swap the whole list" queue. Producers append
 * under the queue's mutex; the consumer detaches the entire list under the
 * same mutex once per loop pass and delivers it without the lock (so events
 * posted during delivery wait for the next pass, DESIGN.md D4). FIFO per
 * producer follows from the single list.
 *
 * Wake-up handshake (the eventfd scheme of libuv's uv_async_send, made
 * exact by doing both halves under the queue lock):
 *   consumer: lock; if list empty and no quit pending: sleeping = true;
 *             unlock; epoll_wait(...); sleeping = false
 *   producer: lock; append; if sleeping: sleeping = false, must_wake; unlock;
 *             if must_wake: write(eventfd)
 * Because the emptiness check and the flag are read and written under the
 * lock, a post either lands before the consumer's check (it stays awake)
 * or sees the flag (and wakes it): no lost wake-up. Clearing the flag when
 * waking means the rest of a burst finds it false: one syscall per sleep.
 * A spurious eventfd write (consumer woke by timeout meanwhile) costs one
 * extra empty pass, never a lost event.
 *
 * This is the simple correct transport; DESIGN.md plans per-producer SPSC
 * rings with inline payloads behind this same interface.
 */
#include "queue.h"
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

int relay__queue_init(relay__queue *q)
{
	q->head = q->tail = NULL;
	q->sleeping = false;
	q->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->wakefd < 0)
		return -errno;
	int rc = pthread_mutex_init(&q->lock, NULL);
	if (rc) {
		close(q->wakefd);
		q->wakefd = -1;
		return -rc;
	}
	return 0;
}

void relay__queue_destroy(relay__queue *q)
{
	if (q->wakefd >= 0)
		close(q->wakefd);
	q->wakefd = -1;
	pthread_mutex_destroy(&q->lock);
}

bool relay__queue_push_locked(relay__queue *q, struct relay__event *ev)
{
	ev->next = NULL;
	if (q->tail)
		q->tail->next = ev;
	else
		q->head = ev;
	q->tail = ev;
	if (!q->sleeping)
		return false;
	q->sleeping = false;
	return true;
}

struct relay__event *relay__queue_take_all(relay__queue *q)
{
	pthread_mutex_lock(&q->lock);
	struct relay__event *list = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&q->lock);
	return list;
}

bool relay__queue_prepare_sleep(relay__queue *q, const _Atomic bool *abort_sleep)
{
	bool sleep;
	pthread_mutex_lock(&q->lock);
	/* abort_sleep is set before a quitter takes this lock (relay__queue_kick),
	 * so reading it here cannot miss a quit that missed the flag. */
	sleep = q->head == NULL && !atomic_load_explicit(abort_sleep, memory_order_relaxed);
	q->sleeping = sleep;
	pthread_mutex_unlock(&q->lock);
	return sleep;
}

void relay__queue_awake(relay__queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->sleeping = false;
	pthread_mutex_unlock(&q->lock);
}

void relay__queue_wake(relay__queue *q)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is saturated: the consumer is woken anyway. */
	while (write(q->wakefd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

void relay__queue_kick(relay__queue *q)
{
	pthread_mutex_lock(&q->lock);
	bool wake = q->sleeping;
	q->sleeping = false;
	pthread_mutex_unlock(&q->lock);
	if (wake)
		relay__queue_wake(q);
}

void relay__queue_clear_wake(relay__queue *q)
{
	uint64_t v;
	while (read(q->wakefd, &v, sizeof v) < 0 && errno == EINTR)
		;
}
