/*
 * invoke.c - run a function in an object's thread (QMetaObject::invokeMethod
 * with a functor): queued, or blocking with a return value.
 */
#include "internal.h"

/* An event for context, holding its anchor; NULL with *rc set when out of
 * memory or context is being destroyed. */
static struct relay__event *invoke_event(relay_object *context, enum relay__event_kind kind,
					 const char *what, int *rc)
{
	*rc = relay__obj_check(context, what);
	if (*rc < 0)
		return NULL;
	struct relay__event *ev = relay__event_new(kind, 0, 0);
	if (!ev) {
		*rc = -ENOMEM;
		return NULL;
	}
	if (!(ev->anchor = relay__anchor_get(context))) {
		relay__free(ev);
		*rc = RELAY_EDESTROYED;   /* its destruction began meanwhile */
		return NULL;
	}
	return ev;
}

int (relay_invoke)(relay_object *context, void (*fn)(void *data), void *data,
		 void (*free_data)(void *data))
{
	if (!context || !fn)
		return -EINVAL;
	int rc = 0;
	struct relay__event *ev = invoke_event(context, RELAY__EV_INVOKE, "relay_invoke", &rc);
	if (!ev)
		return rc;
	ev->u.invoke.fn = fn;
	ev->u.invoke.data = data;
	ev->u.invoke.free_data = free_data;
	rc = relay__post(ev->anchor, ev, RELAY__POST_ALWAYS, NULL);
	if (rc < 0) {
		/* Refused: the caller keeps data (the call failed, nothing ran). */
		ev->u.invoke.free_data = NULL;
		relay__event_free(ev, rc);
		if (rc == RELAY_ENOTDELIVERED)
			rc = RELAY_EDESTROYED;
	}
	return rc;
}

int (relay_invoke_blocking)(relay_object *context, int (*fn)(void *data), void *data, int *result)
{
	char who[160];
	if (!context || !fn)
		return -EINVAL;
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	int rc = relay__obj_check(context, "relay_invoke_blocking");
	if (rc < 0)
		return rc;
	if (relay__obj_thread(context) == self)
		return relay__diag(RELAY_EDEADLOCK, "relay_invoke_blocking: %s lives in the calling "
				   "thread, which would wait for itself; call the function directly",
				   relay__describe(context, who, sizeof who));
	struct relay__event *ev = invoke_event(context, RELAY__EV_CALL, "relay_invoke_blocking", &rc);
	if (!ev)
		return rc;
	ev->u.call.fn = fn;
	ev->u.call.data = data;
	rc = relay__post_blocking(ev->anchor, ev, result);
	if (rc == RELAY_ENOTRUNNING)
		return relay__diag(rc, "relay_invoke_blocking: %s lives in a thread that runs "
				   "no event loop; start it first or use relay_invoke()",
				   relay__describe(context, who, sizeof who));
	return rc;
}
