"""`CompatibleChatOpenAI`: `ChatOpenAI` for every OpenAI-compatible server, not only OpenAI.

langchain-openai builds each chunk from OpenAI's own stream format and drops what
it does not know. Two small overrides, both on raw dicts, fix what our agent needs:

- **Reading** (`_convert_chunk_to_generation_chunk`): before LangChain sees a raw
  chunk, fill in what other servers leave out (a tool call's `index` — without
  it LangChain drops *every* call of the chunk — or `function`, a choice's
  `delta`), turn object `arguments` into JSON text, and take Groq's
  `x_groq.usage`. After, keep what LangChain would drop: reasoning text
  (`reasoning_content`, or `reasoning`) and per-call provider fields
  (Gemini's `extra_content` thought signatures). A `finish_reason` of "error"
  (OpenRouter) raises `ProviderError` with the provider's words.
- **Writing** (`_get_request_payload`): send those fields back on the assistant
  messages of the turn, as DeepSeek (reasoning with tool calls) and Gemini 3
  (thought signatures) require.
- **Failing** (`_astream`): an error from the server (which may quote the key it
  was sent) has the key and anything key-shaped taken out before LangChain hands it
  to a tracer or the engine reads it (`agent.redaction.redact_error`).

Everything else, chunk merging included, is `agent.reply.ReplyAssembler`'s job.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI
from typing_extensions import override

from agent.errors import ProviderError
from agent.redaction import redact_error
from agent.reply import REASONING, TOOL_CALL_EXTRAS

_CALL_FIELDS = {"index", "id", "type", "function"}

# Servers that send `arguments` as an object make the openai SDK's `model_dump` warn on every
# chunk; `_normalized_call` handles them, so the warning would only flood the operator's log.
warnings.filterwarnings("ignore", message="Pydantic serializer warnings", category=UserWarning)


class CompatibleChatOpenAI(ChatOpenAI):
    """`ChatOpenAI` that reads and writes the fields other OpenAI-compatible servers use."""

    @classmethod
    @override
    def get_lc_namespace(cls) -> list[str]:
        """Serialized under its own module, so that `load` builds this class, not a `ChatOpenAI`."""
        return ["agent", "openai_compat"]

    @override
    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        try:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
        except Exception as error:
            redact_error(error, [self.openai_api_key])
            raise

    @override
    def _convert_chunk_to_generation_chunk(
        self, chunk: dict, default_chunk_class: type, base_generation_info: dict | None
    ) -> ChatGenerationChunk | None:
        chunk = _normalized(chunk)
        generation = super()._convert_chunk_to_generation_chunk(
            chunk, default_chunk_class, base_generation_info
        )
        choice = (chunk.get("choices") or [{}])[0]
        if choice.get("finish_reason") == "error":
            raise ProviderError(_stream_error_message(chunk, choice))
        if generation is not None:
            _keep_provider_fields(choice.get("delta") or {}, generation.message.additional_kwargs)
        return generation

    @override
    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict:
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        messages = self._convert_input(input_).to_messages()
        for message, sent in zip(messages, payload.get("messages", []), strict=False):
            if isinstance(message, AIMessage):
                _send_provider_fields(message, sent)
        return payload


def _normalized(chunk: dict) -> dict:
    """The chunk in the shape LangChain expects (a copy; the input is left alone)."""
    chunk = {**chunk, "choices": [_normalized_choice(c) for c in chunk.get("choices") or []]}
    if not chunk.get("usage") and isinstance(groq := chunk.get("x_groq"), dict) and groq.get("usage"):
        chunk["usage"] = groq["usage"]
    return chunk


def _normalized_choice(choice: dict) -> dict:
    delta = dict(choice.get("delta") or {})
    if calls := delta.get("tool_calls"):
        delta["tool_calls"] = [_normalized_call(call) for call in calls]
    return {**choice, "delta": delta}


def _normalized_call(call: dict) -> dict:
    function = dict(call.get("function") or {})
    if function.get("arguments") is not None and not isinstance(function["arguments"], str):
        function["arguments"] = json.dumps(function["arguments"], ensure_ascii=False)
    return {**call, "index": call.get("index"), "function": function}


def _keep_provider_fields(delta: dict, additional_kwargs: dict[str, Any]) -> None:
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        additional_kwargs[REASONING] = reasoning
    calls = delta.get("tool_calls") or []
    extras = [{k: v for k, v in call.items() if k not in _CALL_FIELDS and v is not None} for call in calls]
    if any(extras):
        additional_kwargs[TOOL_CALL_EXTRAS] = extras


def _send_provider_fields(message: AIMessage, sent: dict[str, Any]) -> None:
    if reasoning := message.additional_kwargs.get(REASONING):
        sent["reasoning_content"] = reasoning
    extras = message.additional_kwargs.get(TOOL_CALL_EXTRAS) or {}
    for call in sent.get("tool_calls") or []:
        call.update(extras.get(call.get("id"), {}))


def _stream_error_message(chunk: dict, choice: dict) -> str:
    error = chunk.get("error") or choice.get("error") or {}
    if isinstance(error, dict):
        return str(error.get("message") or json.dumps(error))
    return str(error) or "the model server ended the reply with an error"
