"""Agent support for small text models: call a tool first, then answer from its result.

A 135M draft rarely decides on its own to call a tool, and once a result is in the
conversation it may keep calling. ``ToolFirstMiddleware`` removes both failure modes in a
``create_agent`` loop: the first model turn must call a tool (prefilled, see
``wsd_llm.tools``) and every turn after a tool result answers in text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import ToolMessage


class ToolFirstMiddleware(AgentMiddleware):
    """Require a tool call until a tool has answered; then require a text answer."""

    @staticmethod
    def _steered(request: ModelRequest) -> ModelRequest:
        answered = any(isinstance(message, ToolMessage) for message in request.messages)
        return request.override(tool_choice="none" if answered else "any")

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> Any:
        return handler(self._steered(request))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> Any:
        return await handler(self._steered(request))
