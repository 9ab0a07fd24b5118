#!/usr/bin/env python3
"""gen_corpus.py - writes the seed corpus of the relay fuzzer (fuzz/corpus/).

Each seed is a small scenario written with the fuzzer's operation names,
read from the OPS(X) list in relay_fuzz.c, so the seeds follow the harness
when operations are added. An input is one header byte, then six bytes
per operation: code, actor (0 main, 1 and 2 the relay threads), a, b, c, d
(what they select is in relay_fuzz.c, at each op_* function).

    python3 fuzz/gen_corpus.py            # rewrites fuzz/corpus/ and fuzz/relay.dict

The dictionary holds one token per operation and actor (its first two
bytes), so that mutations insert well-formed operations.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def op_codes():
    src = open(os.path.join(HERE, "relay_fuzz.c")).read()
    block = re.search(r"#define OPS\(X\)(.*?)\nenum op_code", src, re.S).group(1)
    names = re.findall(r"X\((\w+)\)", block)
    return {n: i for i, n in enumerate(names)}


CODES = op_codes()
START_BOTH, START1, INTHREAD = 3, 1, 4


def op(name, actor=0, a=0, b=0, c=0, d=0):
    return bytes([CODES[name], actor, a & 255, b & 255, c & 255, d & 255])


def fail(opbytes, n=1):
    """The same operation, with its n-th allocation (1..4) failing: actor
    bytes 0xf0 and up, the actor still the byte modulo 3."""
    actor = opbytes[1]
    b = next(b for b in range(0xF0, 0x100) if b % 3 == actor and ((b >> 2) & 3) == n - 1)
    return opbytes[:1] + bytes([b]) + opbytes[2:]


# Helpers that read like the operations they encode.
def new_obj(actor=0, caller=False, mainonly=False, parent=None, mode=0, hooks=False, name=False):
    # a % 3: 0 relay's, 1 caller-owned, 2 main-only (bit 2: caller-owned); bit 3: hooks
    kind = 2 if mainonly else (1 if caller else 0)
    a = next(a for a in range(256) if a % 3 == kind and bool(a & 8) == hooks and
             (not mainonly or bool(a & 4) == caller))
    b = 0 if parent is None else 1 + 3 * parent   # b % 3 != 0, then b // 3 picks
    return op("NEW_OBJ", actor, a, b, mode, 1 if name else 0)


def connect(sender, sig, recv, typ=0, flags=0, payload=False, actor=0, bad=False):
    d = typ | (flags << 2) | (0x10 if payload else 0) | (0xe0 if bad else 0)
    return op("CONNECT", actor, sender, sig, recv, d)


def connect_func(sender, sig, ctx=None, typ=0, flags=0, payload=False, mode=0, actor=0):
    c = 0 if ctx is None else 1 + 4 * ctx
    d = typ | (flags << 2) | (0x10 if payload else 0) | (mode << 5)
    return op("CONNECT_FUNC", actor, sender, sig, c, d)


def emit(sender, sig, value=7, actor=0, fail_copy=False):
    return op("EMIT", actor, sender, sig, value, 1 if fail_copy else 0)


def move(obj, target, actor=0):   # target 0 main, 1, 2, 3 none
    return op("MOVE", actor, obj, target)


def loop(actor=0, sub=0, c=0):
    return op("LOOP", actor, 0, sub, c)


def sleep(ms=2):
    return op("SLEEP", 0, 0, ms)


def thread(slot, sub, actor=0, c=0, d=0):   # sub: start quit exit stop wait destroy interrupt query
    return op("THREAD", actor, slot - 1, sub, c, d)


# Operations pick objects among candidates, in creation order: "any"
# picks count every touchable entry, and each input starts by making the
# two thread handles (entries 0 and 1), so the n-th object made is A(n);
# picks of fuzzer objects only (receivers, emitters) count those alone.
def A(n):
    return n + 2


H1, H2 = 0, 1
PING, VAL, BIG, ECHO, DESTROYED, MID = range(6)   # a connect's signal index
EMIT_MID = 4                                        # EMIT's index of mid
AUTO, DIRECT, QUEUED, BLOCKING = range(4)
UNIQUE, SINGLE = 1, 2

SEEDS = {
    "empty": (START_BOTH, []),
    "empty_stopped": (0, []),
    "objects": (START_BOTH, [
        new_obj(), new_obj(caller=True), new_obj(mainonly=True), new_obj(parent=A(0), name=True),
        new_obj(actor=1), new_obj(actor=2, caller=True), new_obj(actor=1, mainonly=True),
        new_obj(actor=1, parent=A(0)), new_obj(actor=1, parent=A(4))]),
    "connect_each_type": (START_BOTH, [
        new_obj(), new_obj(caller=True), move(A(1), 1),
        connect(A(0), PING, 1, AUTO), connect(A(0), PING, 1, DIRECT),
        connect(A(0), PING, 1, QUEUED), connect(A(0), PING, 1, BLOCKING), emit(0, PING),
        loop(), sleep(), emit(0, PING, actor=1), loop(1), loop()]),
    "connect_flags": (START_BOTH, [
        new_obj(), new_obj(), connect(A(0), VAL, 1, AUTO, UNIQUE, True),
        connect(A(0), VAL, 1, AUTO, UNIQUE, True), connect(A(0), PING, 1, QUEUED, SINGLE),
        emit(0, VAL), emit(0, PING), emit(0, PING), loop(), connect(A(0), PING, 1, bad=True)]),
    "blocking_cross": (START_BOTH, [
        new_obj(), move(A(0), 1), new_obj(), connect(A(1), VAL, 0, BLOCKING, 0, True),
        emit(1, VAL, 3), emit(1, VAL, 4, actor=1), emit(1, VAL, 5, actor=2)]),
    "blocking_self": (START_BOTH, [
        new_obj(), new_obj(), connect(A(0), PING, 1, BLOCKING), emit(0, PING)]),
    "func_no_context": (START_BOTH, [
        new_obj(), connect_func(A(0), PING), connect_func(A(0), VAL, None, DIRECT, 0, True),
        connect_func(A(0), PING, None, QUEUED), emit(0, PING), emit(0, VAL, actor=1)]),
    "func_context": (START_BOTH, [
        new_obj(), new_obj(), move(A(1), 2), connect_func(A(0), VAL, A(1), QUEUED, 0, True, mode=1),
        connect_func(A(0), PING, A(1), AUTO, SINGLE), emit(0, VAL), emit(0, PING),
        emit(0, PING), sleep(), loop()]),
    "big_payload": (START_BOTH, [
        new_obj(hooks=True), new_obj(), move(A(1), 1), connect(A(0), BIG, 1, QUEUED, 0, True),
        connect(A(0), BIG, 1, DIRECT, 0, True), connect_func(A(0), BIG, A(1), QUEUED, 0, True),
        emit(0, BIG, 1), emit(0, BIG, 2, fail_copy=True), emit(0, BIG, 3, actor=2), sleep()]),
    "mid_payload": (START_BOTH, [
        new_obj(hooks=True), new_obj(caller=True), move(A(1), 1), new_obj(),
        connect(A(0), MID, 1, QUEUED, 0, True), connect(A(0), MID, 2, AUTO, 0, True),
        connect_func(A(0), MID, A(1), QUEUED, 0, True), connect(A(0), MID, 1, BLOCKING, 0, True),
        emit(0, EMIT_MID, 1), emit(0, EMIT_MID, 2, fail_copy=True), emit(0, EMIT_MID, 3, actor=2),
        loop(), sleep(), emit(0, EMIT_MID, 4), op("DESTROY", 1, A(1)), emit(0, EMIT_MID, 5),
        thread(1, 3, c=2), emit(0, EMIT_MID, 6), thread(1, 5)]),
    "big_dropped": (START_BOTH, [
        new_obj(hooks=True), new_obj(caller=True), move(A(1), 1),
        connect(A(0), BIG, 1, QUEUED, 0, True), emit(0, BIG, 9), emit(0, BIG, 10),
        op("DESTROY", 1, A(1)), op("DISCONNECT", 0, 0)]),
    "disconnect": (START_BOTH, [
        new_obj(), new_obj(), connect(A(0), PING, 1, QUEUED), connect(A(0), VAL, 1, AUTO),
        emit(0, PING), op("DISCONNECT", 0, 0), op("DISCONNECT", 0, 0), loop(),
        op("DISCONNECT_SIGNAL", 0, A(0), VAL), op("DISCONNECT_RECEIVER", 0, A(1)),
        emit(0, VAL), op("DISCONNECT", 0, 15, 1), loop()]),
    "move_null_and_back": (START_BOTH, [
        new_obj(), new_obj(), connect(A(0), PING, 1, AUTO), move(A(1), 3), emit(0, PING),
        move(A(1), 1, actor=2), emit(0, PING), move(A(1), 0, actor=1), emit(0, PING), loop()]),
    "move_wrong_thread": (START_BOTH, [
        new_obj(), move(A(0), 1), move(A(0), 2), move(A(0), 2, actor=1),
        new_obj(parent=A(0), actor=2), move(A(1), 0, actor=2), new_obj(mainonly=True),
        move(A(2), 1), move(A(2), 3), move(H1, 1)]),
    "delete_later": (START_BOTH, [
        new_obj(), new_obj(caller=True), move(A(1), 1), op("DELETE_LATER", 0, A(0)),
        op("DELETE_LATER", 2, A(1)), op("DELETE_LATER", 0, A(1)), loop(), sleep(), loop(1)]),
    "destroy_wrong_thread": (START_BOTH, [
        new_obj(caller=True), move(A(0), 1), op("DESTROY", 0, A(0)), op("DESTROY", 2, A(0)),
        op("DESTROY", 1, A(0)), op("DESTROY", 0, A(0)), emit(0, PING), connect(A(0), PING, 0)]),
    "destroyed_caller_calls": (START_BOTH, [
        new_obj(caller=True), new_obj(), op("DESTROY", 0, A(0)), connect(A(0), PING, 1),
        connect(A(1), PING, 0), op("INVOKE", 0, A(0)), op("SINGLE_SHOT", 0, 0),
        op("WEAK", 0, A(0)), op("DELETE_LATER", 0, A(0)), op("BLOCK", 0, A(0), 1),
        op("QUERY", 0, A(0)), op("SET_PARENT", 0, A(0), 4 * A(1)), op("INVOKE_BLOCKING", 1, A(0))]),
    "timers": (START_BOTH, [
        new_obj(), op("NEW_TIMER", 0, 0, 1 + 2 * A(0)), connect(A(1), 0, 0, AUTO),
        op("TIMER", 0, 0, 0, 2), loop(0, 2, 2), sleep(3), loop(), op("TIMER", 0, 0, 2, 3),
        op("TIMER", 1, 0, 0, 2), op("TIMER", 0, 0, 3, 1), op("TIMER", 0, 0, 4),
        op("TIMER", 0, 0, 1), op("TIMER", 0, 0, 2, 0)]),
    "timer_in_thread": (START_BOTH, [
        new_obj(), op("NEW_TIMER", 1), connect(A(1), 0, 0, QUEUED), op("TIMER", 1, 0, 0, 2),
        sleep(3), loop(), op("TIMER", 0, 0, 0, 2), move(A(1), 2, actor=1), sleep(3), loop(),
        op("TIMER", 2, 0, 1), op("DESTROY", 2, A(1))]),
    "single_shot": (START_BOTH, [
        new_obj(), new_obj(actor=1), op("SINGLE_SHOT", 0, 0, 0), op("SINGLE_SHOT", 0, 1, 2),
        op("SINGLE_SHOT", 2, 0, 1), loop(), sleep(3), loop()]),
    "invoke": (START_BOTH, [
        new_obj(), new_obj(), move(A(1), 1), op("INVOKE", 0, A(0)), op("INVOKE", 0, A(1)),
        op("INVOKE", 2, A(1)), op("INVOKE_BLOCKING", 0, A(1), 42),
        op("INVOKE_BLOCKING", 0, A(0), 1), op("INVOKE_BLOCKING", 1, A(1), 3),
        op("INVOKE_BLOCKING", 2, A(1), 4), op("INVOKE_BLOCKING", 2, A(0), 4), loop()]),
    "invoke_not_running": (0, [
        new_obj(), move(A(0), 1), op("INVOKE_BLOCKING", 0, A(0), 5), op("INVOKE", 0, A(0)),
        thread(1, 0), op("INVOKE_BLOCKING", 0, A(0), 6), move(A(0), 3),
        op("INVOKE_BLOCKING", 0, A(0), 7), op("INVOKE", 0, A(0))]),
    "thread_lifecycle": (START_BOTH, [
        thread(1, 1), thread(1, 4, c=2), thread(1, 0), thread(1, 3, c=2), thread(1, 0),
        thread(1, 7), thread(1, 5), thread(1, 3, c=2), thread(1, 5), thread(1, 0, d=1),
        thread(1, 7)]),
    "thread_wrong_thread": (START_BOTH, [
        thread(2, 0, actor=1), thread(2, 5, actor=1), thread(1, 3, actor=1),
        thread(2, 4, actor=2, c=0x80), thread(1, 4, c=0x80), thread(2, 6, actor=2),
        op("MAIN_RUN", 1), op("DESTROY", 2, H1)]),
    "thread_exit_restart": (START_BOTH, [
        new_obj(), move(A(0), 2), thread(2, 2, c=3), thread(2, 4, c=2), thread(2, 0),
        emit(0, PING), thread(2, 3, c=2), thread(2, 0), op("INVOKE_BLOCKING", 0, A(0), 9)]),
    "thread_destroy_recreate": (START_BOTH, [
        new_obj(), move(A(0), 1), new_obj(caller=True), move(A(1), 1), thread(1, 3, c=2),
        thread(1, 5), op("THREAD", 0, 0, 0, 0, 1), move(A(0), 1), op("DELETE_LATER", 0, A(0)),
        op("DESTROY", 0, A(1)), move(A(1) - 1, 1)]),
    "thread_parent": (START_BOTH, [
        new_obj(), thread(1, 3, c=2), thread(1, 5), op("THREAD", 0, 0, 0, 3 * (A(0) - 1), 1),
        op("DESTROY", 0, A(0) - 1), thread(1, 3, c=2), op("DESTROY", 0, A(0) - 1)]),
    "thread_signals": (0, [
        new_obj(), connect(H1, 0, 0, AUTO), connect(H2, 1, 0, QUEUED),
        op("CONNECT_SPECIAL", 0, H1, 1, 1, QUEUED), thread(1, 0), thread(2, 0), sleep(2),
        loop(), thread(1, 3, c=2), loop()]),
    "slot_quit": (START_BOTH, [
        new_obj(), op("CONNECT_SPECIAL", 0, A(0), PING, 1, AUTO), emit(0, PING), loop(),
        sleep(2), thread(1, 7)]),
    "slot_delete_later": (START_BOTH, [
        new_obj(caller=True), move(A(0), 1), new_obj(),
        op("CONNECT_SPECIAL", 0, A(1), PING, 2 * A(0), AUTO), emit(1, PING), sleep(2), loop()]),
    "finished_delete_later": (START_BOTH, [
        op("CONNECT_SPECIAL", 0, H1, 1, 2 * H1, QUEUED), thread(1, 1), sleep(2), loop(),
        loop()]),
    "main_run": (START_BOTH, [
        new_obj(), move(A(0), 1), connect(A(0), PING, 0, QUEUED), emit(0, PING, actor=1),
        op("MAIN_RUN", 0), thread(1, 7), thread(2, 0), op("MAIN_RUN", 0)]),
    "slot_actions": (START_BOTH, [
        new_obj(mode=2), new_obj(mode=6), new_obj(mode=5), new_obj(mode=4, caller=True),
        connect(A(0), PING, 1, AUTO), connect(A(1), PING, 2, AUTO), connect(A(0), ECHO, 3, AUTO),
        connect(A(0), PING, 3, DIRECT), emit(0, PING), emit(1, PING), loop(), emit(0, PING)]),
    "slot_quit_loop": (START_BOTH, [
        new_obj(), new_obj(mode=3 | 0x40), move(A(1), 1), connect(A(0), PING, 1, QUEUED),
        emit(0, PING), sleep(3), thread(1, 7), thread(1, 0)]),
    "nested_and_disconnect": (START_BOTH, [
        new_obj(mode=1), new_obj(mode=7), connect(A(0), PING, 1), connect(A(1), PING, 0),
        connect(A(0), PING, 0, QUEUED), emit(0, PING), emit(1, PING), loop()]),
    "block_weak_query": (START_BOTH, [
        new_obj(), new_obj(), connect(A(0), PING, 1), op("BLOCK", 0, A(0), 1), emit(0, PING),
        op("BLOCK", 0, A(0), 0), emit(0, PING), op("WEAK", 0, A(1), 0), op("WEAK", 0, A(1), 1),
        op("DESTROY", 0, A(1)), op("WEAK", 0, A(1), 1), op("QUERY", 0, A(0), 1),
        op("NULLS", 1), op("NULLS", 0)]),
    "set_parent": (START_BOTH, [
        new_obj(), new_obj(), new_obj(actor=1), op("SET_PARENT", 0, A(1), 4 * A(0) + 1),
        op("SET_PARENT", 0, A(0), 4 * A(1) + 1), op("SET_PARENT", 0, A(1), 4 * A(2) + 1),
        op("SET_PARENT", 1, A(0), 1), move(A(0), 2), op("SET_PARENT", 0, A(1), 0),
        move(A(0), 2)]),
    "destroyed_signal": (START_BOTH, [
        new_obj(caller=True), new_obj(), connect(A(0), DESTROYED, 1, QUEUED),
        connect_func(A(0), DESTROYED), op("DESTROY", 0, A(0)), loop()]),
    "inthread_teardown": (START_BOTH | INTHREAD, [
        new_obj(actor=1), new_obj(actor=2, caller=True), op("NEW_TIMER", 1, 0, 1 + 2 * A(0)),
        new_obj(actor=1, parent=A(0))]),
    "burst_emitters": (START_BOTH, [
        new_obj(), new_obj(), move(A(1), 1), new_obj(), move(A(2), 2),
        connect(A(0), VAL, 1, QUEUED, 0, True), connect(A(1), VAL, 2, QUEUED, 0, True),
        connect(A(2), VAL, 0, QUEUED, 0, True), connect(A(0), PING, 2, AUTO),
        connect_func(A(1), VAL, A(0), QUEUED, 0, True), op("BURST", 0, 3, 15, 0, 1),
        op("BURST", 0, 9, 7, 0, 0)]),
    "burst_bounce": (START_BOTH, [
        new_obj(), new_obj(), move(A(1), 1), connect(A(0), VAL, 1, QUEUED, 0, True),
        connect(A(0), BIG, 1, QUEUED, 0, True), connect(A(0), PING, 1, AUTO),
        op("BURST", 0, 0, 15, 0, 2 | 12), op("BURST", 0, 1, 15, 0, 3), emit(0, VAL)]),
    "alloc_fail_objects": (START_BOTH, [
        fail(new_obj()), fail(new_obj(caller=True), 2), new_obj(), fail(op("NEW_TIMER", 0, 0, 0)),
        fail(op("NEW_TIMER", 1), 2), fail(op("WEAK", 0, A(0), 0)), fail(op("QUERY", 0, A(0), 1)),
        fail(op("DELETE_LATER", 0, A(0))), fail(op("DELETE_LATER", 1, A(0)), 2)]),
    "alloc_fail_signals": (START_BOTH, [
        new_obj(hooks=True), new_obj(), move(A(1), 1), fail(connect(A(0), VAL, 1, QUEUED, 0, True)),
        connect(A(0), VAL, 1, QUEUED, 0, True), connect(A(0), BIG, 1, QUEUED, 0, True),
        fail(connect_func(A(0), PING, A(1), QUEUED)), connect(A(0), PING, 1, BLOCKING),
        fail(emit(0, VAL)), fail(emit(0, BIG), 2), fail(emit(0, PING)), fail(emit(0, PING), 3),
        fail(op("DISCONNECT", 0, 1)), fail(op("DISCONNECT_SIGNAL", 0, A(0), VAL)),
        fail(op("DISCONNECT_RECEIVER", 0, A(1))), loop()]),
    "alloc_fail_calls": (START_BOTH, [
        new_obj(), new_obj(), move(A(1), 2), fail(op("INVOKE", 0, A(1))),
        fail(op("INVOKE_BLOCKING", 0, A(1), 1)), fail(op("INVOKE_BLOCKING", 0, A(1), 2), 2),
        fail(op("SINGLE_SHOT", 0, 0, 1)), fail(op("SINGLE_SHOT", 0, 1, 0)),
        op("NEW_TIMER", 0), fail(op("TIMER", 0, 0, 0, 3)), fail(move(A(1), 1, actor=2)),
        sleep(3), loop()]),
    "alloc_fail_threads": (START_BOTH, [
        thread(1, 3, c=2), fail(thread(1, 0)), thread(1, 0), thread(2, 3, c=2), thread(2, 5),
        fail(op("THREAD", 0, 1, 0, 0, 1)), op("THREAD", 0, 1, 0, 0, 1), fail(op("MAIN_RUN", 0))]),
    "burst_victim_via_none": (START_BOTH, [
        new_obj(caller=True), new_obj(), move(A(1), 2), new_obj(caller=True), move(A(2), 1),
        connect(A(0), VAL, 1, QUEUED, 0, True), connect(A(1), VAL, 2, QUEUED, 0, True),
        connect(A(2), VAL, 0, AUTO, 0, True), connect(A(0), BIG, 1, QUEUED, 0, True),
        op("BURST", 0, 5, 15, 1, 2 | 16 | 32 | 12), op("BURST", 0, 6, 15, 0, 32 | 1)]),
    "burst_stopper": (START_BOTH, [
        new_obj(), new_obj(), move(A(1), 1), new_obj(), move(A(2), 2), op("NEW_TIMER", 1, 0, 3),
        connect(A(0), VAL, 1, BLOCKING, 0, True), connect(A(2), PING, 1, BLOCKING),
        connect(A(0), PING, 2, QUEUED), connect(A(1), VAL, 0, QUEUED, 0, True),
        op("BURST", 0, 5, 15, 1, 2 | 8), op("BURST", 0, 3, 15, 2, 64 | 128 | 32),
        op("BURST", 0, 1, 15, 0, 64), op("INVOKE_BLOCKING", 0, A(1), 1)]),
    "foreign": (START_BOTH, [
        new_obj(), new_obj(), move(A(1), 1), op("FOREIGN", 0, 0, 3),
        new_obj(), connect(A(2), VAL, 0, QUEUED, 0, True), emit(2, VAL), emit(0, VAL),
        op("INVOKE_BLOCKING", 0, A(2), 3), op("INVOKE_BLOCKING", 0, A(1), 4), loop(),
        op("INVOKE", 0, A(2)), op("DELETE_LATER", 0, A(2)), op("FOREIGN", 0, 0, 1),
        loop(0, 3, 3), op("THREAD", 0, 1, 4, 0x80)]),
    "exit_codes": (START_BOTH, [
        loop(0, 3, 3), loop(1, 3, 1), op("MAIN_RUN", 0, 0, 1, 3), thread(1, 0),
        op("MAIN_RUN", 0, 0, 0)]),
    "release_caches": (START_BOTH, [
        new_obj(), move(A(0), 1), connect(A(0), PING, 0, QUEUED), emit(0, PING), loop(0, 4),
        loop(1, 4), loop(2, 3), loop(0, 5), loop(0, 1), op("MAIN_RUN", 0)]),
}

# Reproducers of crashes the fuzzer found, minimal by hand (fuzz/known/,
# listed in fuzz/README.md). They fail until relay is fixed, and only in a
# build that does not avoid them (FUZZ_AVOID=none bash fuzz/run --replay).
KNOWN = {
    # what relay thread 1 sent before a stop arrives after what it sent
    # once restarted (the main thread drains the new ring first)
    "fifo-across-restart": (START_BOTH, [
        new_obj(), new_obj(), move(A(1), 1), connect(A(1), VAL, 0, QUEUED, 0, True),
        emit(1, VAL, actor=1), loop(), emit(1, VAL, actor=1), thread(1, 3, c=2), thread(1, 0),
        emit(1, VAL, actor=1), loop()]),
    # a single shot armed in thread 2 fires just after its receiver moved
    # to no thread, and forwards it while the main thread destroys it
    "single-shot-forward-uaf": (START_BOTH, [
        o for _ in range(24) for o in (
            new_obj(), move(A(0), 2), op("SINGLE_SHOT", 0, 0, 0), move(A(0), 3, actor=2),
            op("DESTROY", 0, A(0)))]),
    # the quit of stop(0) is still pending when relay_main_run, out of
    # memory, stops the threads "slowly": it skips that thread
    "main-run-oom": (START_BOTH, [thread(2, 3, c=0), fail(op("MAIN_RUN", 0))]),
    "move-destroyed": (START_BOTH, [
        new_obj(caller=True), op("DESTROY", 0, A(0)), move(A(0), 1)]),
    "name-destroyed": (START_BOTH, [
        new_obj(caller=True), op("DESTROY", 0, A(0)), op("QUERY", 0, A(0), 1)]),
}


def write(directory, seeds):
    os.makedirs(directory, exist_ok=True)
    for name, (header, ops) in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(bytes([header]) + b"".join(ops))


def main():
    out = os.path.join(HERE, "corpus")
    if os.path.isdir(out):
        for f in os.listdir(out):
            os.remove(os.path.join(out, f))
    write(out, SEEDS)
    write(os.path.join(HERE, "known"), KNOWN)
    with open(os.path.join(HERE, "relay.dict"), "w") as f:
        f.write("# libFuzzer dictionary of the relay fuzzer: written by gen_corpus.py\n")
        for name, code in CODES.items():
            for actor in range(3):
                f.write(f'{name.lower()}_t{actor}="\\x{code:02x}\\x{actor:02x}"\n')
    print(f"{len(SEEDS)} seeds in {os.path.relpath(out)}, dictionary in fuzz/relay.dict",
          file=sys.stderr)


if __name__ == "__main__":
    main()
