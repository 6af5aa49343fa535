"""W3C Trace Context: which request a log line, an event and a delivery belong to.

A request that arrives with a valid `traceparent` (W3C Trace Context, level 1) joins that
trace; any other starts a new one. Its trace id is the request id in every log line written
while it runs, is kept on the outbox row of each event it records, and goes to the department
in the `traceparent` of each delivery of that event, so one tap or registration can be
followed from the window to a department's receiver. Background work (a job run, a relay
round) starts a trace of its own.

The context lives in a contextvar: asyncio tasks and `asyncio.to_thread` copy it, so a route's
thread-pool work logs under its request.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


@dataclass(frozen=True)
class Trace:
    """One unit of work in a trace: the trace it belongs to and its own span."""

    trace_id: str
    span_id: str

    @property
    def traceparent(self) -> str:
        """This span as the parent of a call it makes (sampled)."""
        return f"00-{self.trace_id}-{self.span_id}-01"


class _Randomness:
    """The system's randomness read 4 KiB at a time and handed out in pieces: a read is a
    system call, and one per request for its ids was 2% of a registration's CPU (profiled on a
    virtual machine, where system calls are dear). A forked process starts with none, so two
    workers never hand out the same ids."""

    def __init__(self, size: int = 4096) -> None:
        self._size, self._buffer, self._at = size, b"", 0
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._buffer, self._at = b"", 0
        self._lock = threading.Lock()

    def hex(self, count: int) -> str:
        """`count` random bytes as hexadecimal."""
        with self._lock:
            start = self._at
            if start + count > len(self._buffer):
                self._buffer, start = os.urandom(self._size), 0
            self._at = start + count
            return self._buffer[start : start + count].hex()


_RANDOM = _Randomness()


def _span_id() -> str:
    return _RANDOM.hex(8)


def new_trace() -> Trace:
    ids = _RANDOM.hex(24)
    return Trace(ids[:32], ids[32:])


def continued(traceparent: str | None) -> Trace:
    """A new span in the caller's trace when `traceparent` is valid (version 00, ids not all
    zero), else a new trace: a malformed header is ignored, as the specification says."""
    found = _TRACEPARENT.match(traceparent.strip()) if traceparent else None
    if found is None or found[1] == _ZERO_TRACE or found[2] == _ZERO_SPAN:
        return new_trace()
    return Trace(found[1], _span_id())


def child_of(trace_id: str | None) -> str:
    """The `traceparent` of an outgoing call in trace `trace_id` (a new trace when None)."""
    return Trace(trace_id or _RANDOM.hex(16), _span_id()).traceparent


_CURRENT: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("trace", default=None)


def current() -> Trace | None:
    return _CURRENT.get()


def current_trace_id() -> str | None:
    trace = _CURRENT.get()
    return None if trace is None else trace.trace_id


@contextlib.contextmanager
def tracing(trace: Trace | None = None) -> Iterator[Trace]:
    """Run the block as `trace` (a new one by default)."""
    active = trace or new_trace()
    token = _CURRENT.set(active)
    try:
        yield active
    finally:
        _CURRENT.reset(token)
