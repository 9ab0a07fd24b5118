/*
 * queue.h - how events travel to a loop: the transport interface.
 *
 * Every post to a thread goes through relay__queue_push_locked and every
 * drain through relay__queue_take_all; nothing else touches the list, so
 * the transport can be replaced (per-producer rings, see DESIGN.md)
 * without touching objects or signals.
 */
#ifndef RELAY_QUEUE_H
#define RELAY_QUEUE_H

#include <pthread.h>
#include <stdbool.h>

struct relay__event;

typedef struct relay__queue {
	pthread_mutex_t lock;
	struct relay__event *head, *tail;   /* guarded by lock */
	bool sleeping;                      /* guarded by lock: consumer is (about to be) in the kernel */
	int wakefd;                         /* eventfd the consumer polls */
} relay__queue;

int relay__queue_init(relay__queue *q);
void relay__queue_destroy(relay__queue *q);

/* Appends ev (FIFO). Lock held. Returns true when the caller must wake the
 * consumer with relay__queue_wake after unlocking: only on the transition
 * into a sleeping consumer, so a burst of posts costs one syscall. */
bool relay__queue_push_locked(relay__queue *q, struct relay__event *ev);

/* Detaches and returns the whole list (oldest first), NULL if empty.
 * Consumer only. */
struct relay__event *relay__queue_take_all(relay__queue *q);

/* Consumer, before sleeping: returns false (and stays awake) if events
 * are queued or `abort_sleep` is set; otherwise marks the consumer
 * sleeping and returns true. Takes the lock. */
bool relay__queue_prepare_sleep(relay__queue *q, const _Atomic bool *abort_sleep);

/* Consumer, after waking: no longer sleeping. */
void relay__queue_awake(relay__queue *q);

/* Wakes the consumer (writes the eventfd). Any thread, no lock needed. */
void relay__queue_wake(relay__queue *q);

/* Wakes the consumer if it sleeps (takes the lock). For quit/exit. */
void relay__queue_kick(relay__queue *q);

/* Consumer: resets the eventfd after the poller saw it readable. */
void relay__queue_clear_wake(relay__queue *q);

#endif
