/*
 * heap.c - the timer deadlines of one loop: an intrusive pairing heap
 * (Fredman, Sedgewick, Sleator, Tarjan, "The pairing heap: a new form of
 * self-adjusting heap", Algorithmica 1986), owner thread only.
 *
 * Intrusive, so arming a timer never allocates and never fails: a timer
 * re-armed before its timeout is emitted, one carried to a new thread by
 * move_to_thread, a single shot armed in its receiver's thread. Ordered by
 * (deadline, insertion sequence), so equal deadlines fire in the order
 * they were armed. Insert is O(1), removal of the minimum or of any node
 * O(log n) amortised. Each node links to its first child (h_child), its
 * next sibling (h_next) and back (h_prev: the previous sibling, or the
 * parent for a first child); a node not in a heap has all three NULL and
 * is not the root.
 */
#include "internal.h"

static bool before(const struct relay__timerdata *a, const struct relay__timerdata *b)
{
	if (a->deadline_ns != b->deadline_ns)
		return a->deadline_ns < b->deadline_ns;
	return a->seq < b->seq;
}

/* Links two roots: the later one becomes the first child of the other. */
static struct relay__timerdata *meld(struct relay__timerdata *a, struct relay__timerdata *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (before(b, a)) {
		struct relay__timerdata *t = a;
		a = b;
		b = t;
	}
	b->h_prev = a;
	b->h_next = a->h_child;
	if (a->h_child)
		a->h_child->h_prev = b;
	a->h_child = b;
	a->h_next = a->h_prev = NULL;
	return a;
}

/* The two-pass pairing of a list of siblings into one root, iteratively:
 * left to right, meld pairs (pushed on a stack linked through h_prev);
 * then right to left, meld each into the result. */
static struct relay__timerdata *merge_pairs(struct relay__timerdata *first)
{
	struct relay__timerdata *stack = NULL;
	while (first) {
		struct relay__timerdata *a = first, *b = a->h_next;
		first = b ? b->h_next : NULL;
		a->h_next = a->h_prev = NULL;
		if (b)
			b->h_next = b->h_prev = NULL;
		struct relay__timerdata *m = meld(a, b);
		m->h_prev = stack;
		stack = m;
	}
	struct relay__timerdata *root = NULL;
	while (stack) {
		struct relay__timerdata *next = stack->h_prev;
		stack->h_prev = NULL;
		root = meld(stack, root);
		stack = next;
	}
	return root;
}

void relay__heap_push(struct relay__timerheap *h, struct relay__timerdata *t)
{
	t->seq = h->seq++;
	t->h_child = t->h_next = t->h_prev = NULL;
	h->root = meld(h->root, t);
}

static bool in_heap(const struct relay__timerheap *h, const struct relay__timerdata *t)
{
	return h->root == t || t->h_prev != NULL;
}

void relay__heap_remove(struct relay__timerheap *h, struct relay__timerdata *t)
{
	if (!in_heap(h, t))
		return;
	if (h->root == t) {
		h->root = merge_pairs(t->h_child);
	} else {
		/* Cut t (with its subtree) out of its sibling list. */
		if (t->h_prev->h_child == t)
			t->h_prev->h_child = t->h_next;
		else
			t->h_prev->h_next = t->h_next;
		if (t->h_next)
			t->h_next->h_prev = t->h_prev;
		h->root = meld(h->root, merge_pairs(t->h_child));
	}
	t->h_child = t->h_next = t->h_prev = NULL;
}

struct relay__timerdata *relay__heap_top(const struct relay__timerheap *h)
{
	return h->root;
}
