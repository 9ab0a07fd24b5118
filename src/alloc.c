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

/* The allocator promises malloc's alignment (16 on the ABIs relay
 * targets), not the 64 of a cache-line-aligned struct: over-allocate, align
 * by hand and keep the allocator's pointer in the word before the block. */
void *relay__calloc_aligned(size_t size, size_t align)
{
	if (align < sizeof(void *))
		align = sizeof(void *);
	unsigned char *raw = relay__alloc(size + align + sizeof(void *));
	if (!raw)
		return NULL;
	uintptr_t at = ((uintptr_t)raw + sizeof(void *) + align - 1) & ~(uintptr_t)(align - 1);
	void **block = (void **)at;
	block[-1] = raw;
	memset(block, 0, size);
	return block;
}

void relay__free_aligned(void *p)
{
	if (p)
		relay__free(((void **)p)[-1]);
}
