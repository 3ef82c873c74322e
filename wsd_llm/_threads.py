"""Run blocking model work off the event loop: a sync iterator consumed as an async one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(make_iterator: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Drive ``make_iterator()`` in a worker thread, handing items to the event loop as they come.

    Leaving the ``async for`` early (break, cancellation) closes the iterator in its thread,
    so the models are free for the next call.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    cancelled = threading.Event()

    def produce() -> None:
        iterator = make_iterator()
        try:
            for item in iterator:
                loop.call_soon_threadsafe(queue.put_nowait, item)
                if cancelled.is_set():
                    break
        except BaseException as error:  # re-raised in the consumer
            loop.call_soon_threadsafe(queue.put_nowait, error)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    worker = loop.run_in_executor(None, produce)
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        cancelled.set()
        await asyncio.shield(worker)
