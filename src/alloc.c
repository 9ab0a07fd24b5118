/*
 * alloc.c - the one allocator all of relay's heap use goes through, so
 * tests can count allocations and inject failures (relay_set_allocator).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void *default_alloc(size_t size, void *user)
{
	(void)user;
	return malloc(size);
}

static void default_release(void *ptr, void *user)
{
	(void)user;
	free(ptr);
}

/* Set once before other relay calls (documented), read everywhere after:
 * plain fields are enough, no atomics on the allocation path. */
static relay_allocator allocator = { default_alloc, default_release, NULL };

int relay_set_allocator(const relay_allocator *a)
{
	if (!a) {
		allocator = (relay_allocator){ default_alloc, default_release, NULL };
		return 0;
	}
	if (!a->alloc || !a->release)
		return -EINVAL;
	allocator = *a;
	return 0;
}

void *relay__alloc(size_t size)
{
	return allocator.alloc(size ? size : 1, allocator.user);
}

void *relay__calloc(size_t size)
{
	void *p = relay__alloc(size);
	if (p)
		memset(p, 0, size);
	return p;
}

void relay__free(void *p)
{
	if (p)
		allocator.release(p, allocator.user);
}
