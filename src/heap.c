/*
 * heap.c - a binary min-heap of timer deadlines (owner thread only).
 * Ordered by (deadline, insertion sequence) so equal deadlines fire in the
 * order they were armed; each entry knows its index, so removal is
 * O(log n) (as libuv's timer heap and GLib's, without the intrusive tree).
 */
#include "internal.h"

static bool before(const struct relay__timerdata *a, const struct relay__timerdata *b)
{
	if (a->deadline_ns != b->deadline_ns)
		return a->deadline_ns < b->deadline_ns;
	return a->seq < b->seq;
}

static void place(struct relay__timerheap *h, size_t i, struct relay__timerdata *t)
{
	h->items[i] = t;
	t->heap_index = i;
}

static void sift_up(struct relay__timerheap *h, size_t i)
{
	struct relay__timerdata *t = h->items[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!before(t, h->items[parent]))
			break;
		place(h, i, h->items[parent]);
		i = parent;
	}
	place(h, i, t);
}

static void sift_down(struct relay__timerheap *h, size_t i)
{
	struct relay__timerdata *t = h->items[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct relay__timerdata *best = t;
		if (l < h->count && before(h->items[l], best)) {
			m = l;
			best = h->items[l];
		}
		if (r < h->count && before(h->items[r], best))
			m = r;
		if (m == i)
			break;
		place(h, i, h->items[m]);
		i = m;
	}
	place(h, i, t);
}

int relay__heap_push(struct relay__timerheap *h, struct relay__timerdata *t)
{
	if (h->count == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 8;
		struct relay__timerdata **items = relay__alloc(cap * sizeof *items);
		if (!items)
			return -ENOMEM;
		for (size_t i = 0; i < h->count; i++)
			items[i] = h->items[i];
		relay__free(h->items);
		h->items = items;
		h->cap = cap;
	}
	t->seq = h->seq++;
	place(h, h->count++, t);
	sift_up(h, t->heap_index);
	return 0;
}

void relay__heap_remove(struct relay__timerheap *h, struct relay__timerdata *t)
{
	size_t i = t->heap_index;
	if (i >= h->count || h->items[i] != t)
		return;
	struct relay__timerdata *last = h->items[--h->count];
	if (last != t) {
		place(h, i, last);
		sift_down(h, i);
		sift_up(h, last->heap_index);
	}
	t->heap_index = (size_t)-1;
}

struct relay__timerdata *relay__heap_top(const struct relay__timerheap *h)
{
	return h->count ? h->items[0] : NULL;
}

void relay__heap_free(struct relay__timerheap *h)
{
	relay__free(h->items);
	h->items = NULL;
	h->count = h->cap = 0;
}
