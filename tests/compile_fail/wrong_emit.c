/*
 * wrong_emit.c - relay_emit must refuse, at compile time, a payload whose
 * type does not match the signal: progress carries an int, the emit passes
 * a double. With -DRELAY_GOOD it passes an int and the file compiles. Not
 * linked: built by tests/CMakeLists.txt with -fsyntax-only.
 */
#include "relay.h"

typedef struct worker {
	relay_object base;
	RELAY_SIGNAL(progress, int);
} worker;

int report(worker *w);

int report(worker *w)
{
#ifdef RELAY_GOOD
	int value = 50;
#else
	double value = 0.5;
#endif
	return relay_emit(w, progress, &value);
}
