"""What remote draft and base models share: an endpoint, a local tokenizer, and BOS handling."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from typing_extensions import Self

from wsd_llm.backends.remote.client import Endpoint, OpenAIClient
from wsd_llm.backends.tokenizer import TokenizerMixin, TokenizerSpec, load_tokenizer
from wsd_llm.sampling import Sampling

# Neutral sampling settings: servers default to a repeat penalty and top-k/min-p cuts that
# would make "greedy" differ from the local model's argmax.
NEUTRAL_SAMPLING: dict[str, Any] = {"repeat_penalty": 1.0, "top_k": 0, "min_p": 0.0}


class RemoteModel(TokenizerMixin):
    """A model served over the OpenAI API, with its tokenizer loaded locally (tokenizer only).

    ``tokenizer`` is the served model's: a tokenizer object, a hub id, a directory or the
    ``.gguf`` file the server runs. Close the model, or use it as a context manager
    (``with RemoteBase(...) as base:``), to release its connections.
    """

    def __init__(self, endpoint: Endpoint | str, tokenizer: TokenizerSpec, *, api_key: str | None = None,
                 name: str | None = None, context_window: int | None = None, probe: bool = True) -> None:
        """Args:
            endpoint: an :class:`Endpoint`, or the server's URL (``http://127.0.0.1:8000/v1``).
            tokenizer: the served model's tokenizer: an object, a hub id, a directory or the
                ``.gguf`` file the server runs (tokenizer only).
            api_key: Bearer key when ``endpoint`` is a URL; never printed.
            name: the name reported in results; by default the endpoint's model or the tokenizer.
            context_window: the server's context size in tokens; by default the server's
                (vLLM's ``max_model_len``) or the tokenizer's.
            probe: check at once that the server can play this role (see :meth:`probe`).

        Raises:
            RemoteError: the server cannot be reached, or (``RemoteCapabilityError``) cannot
                play this role, e.g. a base that returns no prompt logprobs.
            ValueError: no context window is known; pass ``context_window``.
            FileNotFoundError: a tokenizer path that does not exist.
        """
        self.endpoint = endpoint if isinstance(endpoint, Endpoint) else Endpoint(base_url=endpoint, api_key=api_key)
        self.client = OpenAIClient(self.endpoint)
        try:
            self.tokenizer = load_tokenizer(tokenizer)
            self.name = name or self.endpoint.model or str(tokenizer)
            self.lock = threading.RLock()
            self._context_window = self._context_limit(context_window)
            self.server_adds_bos = False
            if probe:
                self.probe()
        except BaseException:
            self.client.close()
            raise

    def close(self) -> None:
        """Close the connections to the server; the model cannot be used afterwards."""
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def probe(self) -> None:
        """Check at start that the server can play this model's role; raise a clear error if not."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, endpoint={self.endpoint.base_url!r})"

    @property
    def where(self) -> str:
        return f"{self.endpoint.base_url}/completions"

    @property
    def context_window(self) -> int:
        return self._context_window

    def _context_limit(self, given: int | None) -> int:
        """The given window, else the server's (vLLM lists ``max_model_len``), else the tokenizer's."""
        if given is not None:
            return given
        models = self.client.models() or [{}]
        card = next((m for m in models if m.get("id") == self.endpoint.model), models[0])
        for limit in (card.get("max_model_len"), getattr(self.tokenizer, "model_max_length", None)):
            if isinstance(limit, int) and 0 < limit < 10**9:
                return limit
        raise ValueError(f"neither the server nor the tokenizer of {self.name} states a context window; "
                         "pass context_window= (the server's context size, e.g. llama-cpp-python's --n_ctx)")

    def completion(self, prompt: str, **settings: Any) -> dict[str, Any]:
        """A greedy ``/v1/completions`` answer; ``settings`` are ``completions.create`` arguments."""
        return self.client.complete(prompt, **{"temperature": 0.0, **settings}, extra_body=NEUTRAL_SAMPLING)

    def stream_completion(self, prompt: str, sampling: Sampling) -> Iterator[dict[str, Any]]:
        """A ``/v1/completions`` of ``prompt`` written as ``sampling`` says, streamed chunk by chunk;
        closing the iterator stops the server."""
        settings: dict[str, Any] = {"max_tokens": sampling.max_tokens, "temperature": sampling.temperature,
                                    "top_p": sampling.top_p, "stop": list(sampling.stop_tokens) or None}
        optional = {"seed": sampling.seed, "frequency_penalty": sampling.frequency_penalty or None,
                    "presence_penalty": sampling.presence_penalty or None}
        settings.update({name: value for name, value in optional.items() if value is not None})
        # Outside the OpenAI schema: vLLM's names, and llama.cpp's for the repetition penalty.
        extra = {**NEUTRAL_SAMPLING, "top_k": sampling.top_k, "repeat_penalty": sampling.repetition_penalty}
        if sampling.repetition_penalty != 1.0:
            extra["repetition_penalty"] = sampling.repetition_penalty
        return self.client.stream(prompt, **settings, extra_body=extra)

    def detect_added_bos(self, answer: dict[str, Any], sent: str) -> None:
        """Learn from a completion's ``usage`` whether the server puts a BOS before the prompt itself
        (then ours is dropped, or the model would see two)."""
        counted = (answer.get("usage") or {}).get("prompt_tokens")
        self.server_adds_bos = bool(self.bos_token) and counted == len(self.encode(sent)) + 1

    def server_prompt(self, text: str) -> str:
        """``text`` as the server must receive it: without our BOS when the server adds its own."""
        bos = self.bos_token
        if self.server_adds_bos and bos and text.startswith(bos):
            return text[len(bos):]
        return text
