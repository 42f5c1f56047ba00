"""Two asyncio helpers for the edge that keep a stopping worker from waiting forever.

Python 3.11's ``asyncio.wait_for`` returns the inner result when its task is
cancelled in the same loop turn as the inner wait completes (CPython issue
gh-86296, fixed in 3.12): the cancellation is lost. In the worker that is a
``SIGTERM`` during a backlog: Faust cancels the agent while the agent waits
for the producer buffer (:func:`streamseg.adapters.drain`), the producer's stop
flush completes that wait in the same turn, the agent goes on to wait for its
next batch, and Faust waits for the agent forever (10 of 40 stops in a backlog of
7-28 KB events; docs/RELIABILITY.md, "Stopping with SIGTERM during a backlog").
:func:`wait_event` is a timed wait that cannot lose a cancellation;
:func:`reraise_cancel` stops a task whose cancellation something below it
swallowed anyway.

Examples
--------
>>> import asyncio
>>> async def demo() -> tuple[bool, bool]:
...     ev = asyncio.Event()
...     timed_out = await wait_event(ev, 0.01)
...     ev.set()
...     return timed_out, await wait_event(ev, 1.0)
>>> asyncio.run(demo())
(False, True)
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; True if it was set.

    A cancellation of the calling task is always raised (``asyncio.wait`` does
    not swallow it the way 3.11's ``asyncio.wait_for`` can).
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return bool(done)


def reraise_cancel() -> None:
    """Raise ``CancelledError`` if the current task was cancelled and is still going.

    A task whose cancellation was caught somewhere below it (and not undone
    with ``Task.uncancel``) still reports ``cancelling() > 0``.

    >>> async def swallowed() -> str:
    ...     task = asyncio.current_task()
    ...     task.cancel()
    ...     try:
    ...         await asyncio.sleep(1)
    ...     except asyncio.CancelledError:
    ...         pass  # what a library may do by mistake
    ...     try:
    ...         reraise_cancel()
    ...     except asyncio.CancelledError:
    ...         return "stopped"
    ...     return "went on"
    >>> asyncio.run(swallowed())
    'stopped'
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()
