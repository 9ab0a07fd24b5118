/*
 * invoke.c - run a function in an object's thread (QMetaObject::invokeMethod
 * with a functor): queued, or blocking with a return value.
 */
#include "internal.h"

/* An invoke event for context, holding a weak reference to it; NULL with
 * *rc set when out of memory or context is being destroyed. */
static struct relay__event *invoke_event(relay_object *context, int *rc)
{
	struct relay__event *ev = relay__event_new(RELAY__EV_INVOKE, 0);
	if (!ev) {
		*rc = -ENOMEM;
		return NULL;
	}
	if (!(ev->weak = relay__weak_acquire(context))) {
		relay__free(ev);
		*rc = (atomic_load(&context->relay__flags) & RELAY__OBJ_DESTROYING)
			      ? RELAY_EDESTROYED : -ENOMEM;
		return NULL;
	}
	ev->target = context;
	return ev;
}

int relay_invoke(relay_object *context, void (*fn)(void *data), void *data,
		 void (*free_data)(void *data))
{
	if (!context || !fn || !context->relay__class)
		return -EINVAL;
	int rc = 0;
	struct relay__event *ev = invoke_event(context, &rc);
	if (!ev)
		return rc;
	ev->u.invoke.fn = fn;
	ev->u.invoke.data = data;
	ev->u.invoke.free_data = free_data;
	rc = relay__post_to_object(context, ev, RELAY__POST_ALWAYS);
	if (rc < 0) {
		/* Refused: the caller keeps data (the call failed, nothing ran). */
		ev->u.invoke.free_data = NULL;
		relay__event_free(ev, rc);
	}
	return rc;
}

int relay_invoke_blocking(relay_object *context, int (*fn)(void *data), void *data, int *result)
{
	char who[160];
	if (!context || !fn || !context->relay__class)
		return -EINVAL;
	struct relay__tdata *self = relay__tdata_current();
	if (self && relay__obj_thread(context) == self)
		return relay__diag(RELAY_EDEADLOCK, "relay_invoke_blocking: %s lives in the calling "
				   "thread, which would wait for itself; call the function directly",
				   relay__describe(context, who, sizeof who));
	int rc = 0;
	struct relay__event *ev = invoke_event(context, &rc);
	if (!ev)
		return rc;
	ev->u.call.fn = fn;
	ev->u.call.data = data;
	rc = relay__post_blocking(context, ev, result);
	if (rc == RELAY_ENOTRUNNING)
		return relay__diag(rc, "relay_invoke_blocking: %s lives in a thread that runs "
				   "no event loop; start it first or use relay_invoke()",
				   relay__describe(context, who, sizeof who));
	return rc;
}
