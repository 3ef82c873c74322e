"""``wsd-llm serve``: WSD behind an OpenAI-compatible HTTP API. Needs the ``server`` extra.

Any OpenAI client (the ``openai`` package, LangChain's ``ChatOpenAI``, LlamaIndex's
``OpenAILike``) can talk to it. Routes: ``POST /v1/chat/completions`` (JSON or SSE stream),
``GET /v1/models``, ``GET /health``; ``/docs`` only on a server without an API key.

Honoured request fields: ``model`` (the served name, or the pair's ``wsd:<draft>+<base>`` name
that the library's other faces report; anything else is a 404 ``model_not_found``),
``messages`` (system/developer, user and assistant text; multi-part content of text parts; the
tool loop: assistant ``tool_calls`` with ``content: null``, then ``tool`` messages whose
``tool_call_id`` names an earlier call), ``tools`` (OpenAI function tools) and ``tool_choice``
(``auto``, ``none``, ``required``, ``{"type": "function", "function": {"name": ...}}``): a reply
that calls a tool has ``content: null``, ``tool_calls: [{"id", "type": "function", "function":
{"name", "arguments"}}]`` and ``finish_reason: "tool_calls"`` (``"length"`` when the budget cut
it), and streams as ``delta.tool_calls`` pieces (id, type and name first, then ``arguments``
pieces that add up to the call's); local models write calls under a grammar (see
``wsd_llm.tools``), so a call names a given tool and its arguments fit the tool's schema (a
remote pair is only asked by the prompt, its forced call's draft prefilled);
``parallel_tool_calls`` is accepted, and a reply holds at most one call (which OpenAI allows),
``max_tokens``/``max_completion_tokens`` (up to the server's ``--max-tokens``), ``temperature``
and ``top_p`` (the draft's sampling), ``frequency_penalty`` and ``presence_penalty`` (the base's
continuation), ``seed`` (both samplers), ``stop``, ``stream``, ``stream_options.include_usage``
(usage in an extra last chunk with no choices, and only then), ``logprobs`` and ``top_logprobs``
(every reply token under the base model, draft part included; a stream sends them in the chunk
that carries ``finish_reason``, as they are computed once the reply is whole), vLLM's extra
sampling fields ``repetition_penalty`` and ``top_k`` (the base's continuation), ``response_format``
(``text``, ``json_object``, ``json_schema``: both models write under a grammar compiled from it, so
a reply that ends with ``finish_reason: "stop"`` parses; one cut by the budget ends with
``"length"``, as OpenAI's does; with tools, a reply is a call or such an answer), and WSD's
own ``gamma``, ``window``, ``max_draft_tokens`` (up to the server's), ``base_temperature`` and ``base_top_p``
(the base's continuation; it is greedy unless ``base_temperature`` > 0).

Accepted and not used, as they change nothing about the reply: ``user``, ``metadata``,
``store``, ``safety_identifier``, ``prompt_cache_key``, ``service_tier``, the ``name`` of a
message other than a tool's, ``annotations``, and the "off" values of the refused fields below
(``n: 1``, ``functions: []``...).

Refused with a 400 ``invalid_request_error`` whose ``param`` names the field: the legacy
``functions``/``function_call`` fields, ``function`` role and assistant ``function_call`` (send
``tools``, ``tool_calls`` and ``tool`` messages), ``n`` > 1, ``logit_bias``,
``audio``/``modalities``, ``prediction``, ``web_search_options``, ``reasoning_effort``,
``verbosity``; a malformed tool, or one whose parameters schema does not compile (``tools``); an
unknown ``tool_choice`` form, a call required with no tools or of a tool not given
(``tool_choice``); a ``tool`` message without an earlier call of its ``tool_call_id``;
non-text content parts; any field OpenAI does not define; text holding a lone
surrogate (``\\ud800``: not valid Unicode); a conversation longer than either model's context
(checked before any work, and before a stream starts).

Requests wait in a FIFO queue for one of ``workers`` slots; the models run in worker threads.
A client that disconnects (or times out, and retries: the ``openai`` client retries twice by
default) has its run stopped within one chunk, queued or running, so it holds no slot.
Replies carry ``usage`` and a ``wsd`` field with the switch statistics (``WSDResult.stats()``).
"""

from wsd_llm.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
