"""``wsd-llm serve``: WSD behind an OpenAI-compatible HTTP API. Needs the ``server`` extra.

Any OpenAI client (the ``openai`` package, LangChain's ``ChatOpenAI``, LlamaIndex's
``OpenAILike``) can talk to it. Routes: ``POST /v1/chat/completions`` (JSON or SSE stream),
``GET /v1/models``, ``GET /health``; ``/docs`` only on a server without an API key.

Honoured request fields: ``model`` (the served name, or the pair's ``wsd:<draft>+<base>`` name
that the library's other faces report; anything else is a 404 ``model_not_found``),
``messages`` (system/developer, user and assistant text; multi-part content of text parts),
``max_tokens``/``max_completion_tokens`` (up to the server's ``--max-tokens``), ``temperature``
and ``top_p`` (the draft's sampling), ``frequency_penalty`` and ``presence_penalty`` (the base's
continuation), ``seed`` (both samplers), ``stop``, ``stream``, ``stream_options.include_usage``
(usage in an extra last chunk with no choices, and only then), ``logprobs`` and ``top_logprobs``
(every reply token under the base model, draft part included; a stream sends them in the chunk
that carries ``finish_reason``, as they are computed once the reply is whole), vLLM's extra
sampling fields ``repetition_penalty`` and ``top_k`` (the base's continuation), ``response_format``
(``text``, ``json_object``, ``json_schema``: both models write under a grammar compiled from it, so
a reply that ends with ``finish_reason: "stop"`` parses; one cut by the budget ends with
``"length"``, as OpenAI's does), and WSD's own ``gamma``,
``window``, ``max_draft_tokens`` (up to the server's), ``base_temperature`` and ``base_top_p``
(the base's continuation; it is greedy unless ``base_temperature`` > 0).

Accepted and not used, as they change nothing about a text reply: ``user``, ``metadata``,
``store``, ``safety_identifier``, ``prompt_cache_key``, ``service_tier``,
``parallel_tool_calls``, a message's ``name`` and ``annotations``, and the "off" values of the
refused fields below (``n: 1``, ``tools: []``, ``tool_choice: "none"``...).

Refused with a 400 ``invalid_request_error`` whose ``param`` names the field: ``tools``,
``tool_choice``, ``functions``, ``function_call``, ``n`` > 1,
``logit_bias``, ``audio``/``modalities``, ``prediction``, ``web_search_options``,
``reasoning_effort``, ``verbosity``; tool-loop history (assistant ``tool_calls``, ``tool`` messages); non-text content parts; any field OpenAI does not define; text holding a lone
surrogate (``\\ud800``: not valid Unicode); a conversation longer than either model's context
(checked before any work, and before a stream starts).

Requests wait in a FIFO queue for one of ``workers`` slots; the models run in worker threads.
A client that disconnects (or times out, and retries: the ``openai`` client retries twice by
default) has its run stopped within one chunk, queued or running, so it holds no slot.
Replies carry ``usage`` and a ``wsd`` field with the switch statistics (``WSDResult.stats()``).
"""

from wsd_llm.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
