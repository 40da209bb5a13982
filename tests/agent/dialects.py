"""Replays of what OpenAI-compatible servers really stream, one per server dialect.

Every dialect answers the same two-step question, `QUESTION`, in its own wire
format: step 1 calls add(a=2, b=3) and multiply(a=4, b=5) in parallel, step 2
calls final_answer (or, under `tool_choice: "auto"`, answers in plain content).
Each names the public report, document or source file whose shapes it
reproduces, the token usage the server reported (counted once per response,
however often the server repeats it) and what it expects back in the next
request. `tests/agent/test_dialects.py` runs each through the real engine and
the real `ChatOpenAI` over HTTP.

Shapes not quoted verbatim by a source (ids, token numbers, error wording the
report paraphrases) are filled in with plausible values and marked "modelled".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from support.scripted_openai import DONE, HttpError, ScriptedReply, SseStream, events

QUESTION = "What are 2 + 3 and 4 * 5?"
ANSWER = "2 + 3 = 5 and 4 × 5 = 20"
TOOLS_USED = ("add", "multiply")
ADD_ARGS = {"a": 2, "b": 3}
MULTIPLY_ARGS = {"a": 4, "b": 5}
FINAL_ARGS = {"answer": ANSWER, "tools_used": list(TOOLS_USED)}
RESULTS = {"add": "5", "multiply": "20"}

STEP1_USAGE = (181, 43)
STEP2_USAGE = (236, 31)
TOTAL_USAGE = (STEP1_USAGE[0] + STEP2_USAGE[0], STEP1_USAGE[1] + STEP2_USAGE[1])
CREATED = 1764100000
OMIT: Any = object()
"""A field the server leaves out of its JSON (as opposed to sending `null`)."""


@dataclass(frozen=True)
class Dialect:
    """One server's replay of the two-step turn, and what the engine must make of it."""

    name: str
    source: str
    model: str
    replies: tuple[SseStream, SseStream]
    usage: tuple[int, int]
    refusals: tuple[HttpError, ...] = ()
    """Errors the server answers first, before the engine's fallback makes the turn work."""
    falls_back: frozenset[str] = frozenset()
    """Request fields the retry must change: `tool_choice` (→ "auto"), `stream_options` (dropped)."""
    call_ids: tuple[str, str] | None = None
    """The ids the server gave add and multiply; None when it gave none (ids must then be generated)."""
    ids_sent_back: bool = True
    """Whether step 2 must send the server's own ids back (False: any consistent, distinct ids)."""
    reasoning: str = ""
    """Reasoning the server streams in step 1 (`reasoning_content` or `reasoning` deltas)."""
    reasoning_sent_back: bool = False
    """Whether step 2 must carry that reasoning back as `reasoning_content` (DeepSeek thinking mode)."""
    signatures: tuple[str | None, str | None] = (None, None)
    """`extra_content.google.thought_signature` each step-1 call must carry back (Gemini 3)."""
    thought: str = ""
    """Text the model writes in step 1 alongside its tool calls: a thought, not the answer."""
    answers_in_content: bool = False
    """Step 2 answers in plain content (under `tool_choice: "auto"`) instead of calling final_answer."""

    @property
    def script(self) -> tuple[ScriptedReply, ...]:
        return (*self.refusals, *self.replies)


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def arguments(args: dict[str, Any]) -> str:
    return json.dumps(args, ensure_ascii=False)


def pieces(text: str, size: int = 7) -> list[str]:
    """`text` cut into pieces of `size` characters, as a server streams arguments."""
    return [text[start : start + size] for start in range(0, len(text), size)]


def tool_delta(
    *,
    index: Any = OMIT,
    id: Any = OMIT,
    type: Any = OMIT,
    name: Any = OMIT,
    args: Any = OMIT,
    **extra: Any,
) -> dict[str, Any]:
    """One entry of `delta.tool_calls`, with exactly the fields given."""
    delta = {k: v for k, v in (("index", index), ("id", id), ("type", type)) if v is not OMIT}
    function = {k: v for k, v in (("name", name), ("arguments", args)) if v is not OMIT}
    if function:
        delta["function"] = function
    return delta | extra


def chunk(
    delta: dict[str, Any],
    finish_reason: str | None = None,
    *,
    model: str,
    usage: Any = OMIT,
    choice_extra: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A `chat.completion.chunk` with one choice."""
    choice = {
        "index": 0,
        "delta": delta,
        "logprobs": None,
        "finish_reason": finish_reason,
        **(choice_extra or {}),
    }
    body = {
        "id": "chatcmpl-7f3a",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [choice],
        **top,
    }
    if usage is not OMIT:
        body["usage"] = usage
    return body


def usage_chunk(model: str, prompt: int, completion: int, **top: Any) -> dict[str, Any]:
    """The `choices: []` chunk that `stream_options.include_usage` asks for."""
    return {
        "id": "chatcmpl-7f3a",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [],
        "usage": usage(prompt, completion),
        **top,
    }


def sse(*payloads: dict[str, Any] | str) -> SseStream:
    """A reply of these events, ended by `data: [DONE]`."""
    return SseStream((*events(*payloads), DONE, ""))


def streamed_call(
    model: str, index: int, call_id: str, name: str, args: dict[str, Any], size: int = 7
) -> list[dict[str, Any]]:
    """OpenAI's own shape: a header with id, name and empty arguments, then argument pieces."""
    header = tool_delta(index=index, id=call_id, type="function", name=name, args="")
    chunks = [chunk({"tool_calls": [header]}, model=model)]
    chunks += [
        chunk({"tool_calls": [tool_delta(index=index, args=piece)]}, model=model)
        for piece in pieces(arguments(args), size)
    ]
    return chunks


# -- the dialects ---------------------------------------------------------------------------


def openai() -> Dialect:
    model = "gpt-4.1-mini"
    ids = ("call_Ux3gPm4pQ6yWc1b8Rz0aT2kL", "call_Hn7vE2sJ9dKq5tB0mW4xY8cA")
    first = {"role": "assistant", "content": None, "refusal": None}
    step1 = sse(
        chunk(first, model=model, usage=None),
        *(
            c | {"usage": None}
            for c in (
                *streamed_call(model, 0, ids[0], "add", ADD_ARGS),
                *streamed_call(model, 1, ids[1], "multiply", MULTIPLY_ARGS),
            )
        ),
        chunk({}, "tool_calls", model=model, usage=None),
        usage_chunk(model, *STEP1_USAGE),
    )
    step2 = sse(
        chunk(first, model=model, usage=None),
        *(c | {"usage": None} for c in streamed_call(model, 0, "call_Qp2L", "final_answer", FINAL_ARGS)),
        chunk({}, "tool_calls", model=model, usage=None),
        usage_chunk(model, *STEP2_USAGE),
    )
    return Dialect(
        "openai",
        "https://platform.openai.com/docs/api-reference/chat-streaming and "
        "https://platform.openai.com/docs/guides/function-calling (streaming): header delta with id, "
        "name and empty arguments, then index-keyed argument pieces; usage in a final choices-[] chunk",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
    )


def ollama_old() -> Dialect:
    model = "llama3.1:8b"
    ids = ("call_x7k2m9qp", "call_b3n8v1rt")

    def calls(*entries: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
        return {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                tool_delta(id=i, type="function", name=n, args=arguments(a)) for i, n, a in entries
            ],
        }

    done = {"role": "assistant", "content": ""}
    fingerprint = {"system_fingerprint": "fp_ollama"}
    step1 = sse(
        chunk(
            calls((ids[0], "add", ADD_ARGS), (ids[1], "multiply", MULTIPLY_ARGS)), model=model, **fingerprint
        ),
        chunk(done, "stop", model=model, **fingerprint),
    )
    step2 = sse(
        chunk(calls(("call_p4w8z2nd", "final_answer", FINAL_ARGS)), model=model, **fingerprint),
        chunk(done, "stop", model=model, **fingerprint),
    )
    return Dialect(
        "ollama-0.4",
        "ollama/ollama#7881 (no `index` in streamed tool calls, fixed in v0.4.7) and ollama v0.4.6 "
        "openai/openai.go toChunk/toToolCalls: every chunk repeats role, all calls whole in one chunk "
        "without index, finish_reason 'stop' on the last chunk, no usage at all",
        model,
        (step1, step2),
        (0, 0),
        call_ids=ids,
    )


OLLAMA_THINKING = "Two independent sums: call add and multiply at once."


def ollama() -> Dialect:
    model = "qwen3:8b"
    ids = ("call_lyywui55", "call_0scw2dos")

    def call(call_id: str, name: str, args: dict[str, Any], first: bool) -> dict[str, Any]:
        delta: dict[str, Any] = {"role": "assistant"} if first else {}
        delta |= {
            "content": "",
            "tool_calls": [tool_delta(id=call_id, index=0, type="function", name=name, args=arguments(args))],
        }
        return chunk(delta, model=model, system_fingerprint="fp_ollama")

    finish = chunk({}, "tool_calls", model=model, system_fingerprint="fp_ollama")
    thinking = [
        chunk(
            {"role": "assistant", "content": "", "reasoning": p}, model=model, system_fingerprint="fp_ollama"
        )
        for p in pieces(OLLAMA_THINKING, 12)
    ]
    step1 = sse(
        *thinking,
        call(ids[0], "add", ADD_ARGS, first=False),
        call(ids[1], "multiply", MULTIPLY_ARGS, first=False),
        finish,
        usage_chunk(model, *STEP1_USAGE, system_fingerprint="fp_ollama"),
    )
    step2 = sse(
        call("call_9fj3kd2a", "final_answer", FINAL_ARGS, first=True),
        finish,
        usage_chunk(model, *STEP2_USAGE, system_fingerprint="fp_ollama"),
    )
    return Dialect(
        "ollama",
        "ollama/ollama#15457 and #15497 (every parallel call at index 0, each with its own id) and "
        "ollama openai/openai.go ToStreamChunks/ToToolCalls/FinishChunk + middleware/openai.go: "
        "`reasoning` deltas, whole calls, a separate empty-delta finish chunk, usage in a choices-[] chunk",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
        reasoning=OLLAMA_THINKING,
    )


def vllm() -> Dialect:
    model = "Qwen/Qwen3-8B"
    ids = ("chatcmpl-tool-4b1f0c9e8a2d4e6f", "chatcmpl-tool-9c3e2a1b7d5f4a0e")
    role = chunk({"role": "assistant", "content": ""}, model=model)

    def call(index: int, call_id: str, name: str, args: dict[str, Any], last: bool) -> list[dict[str, Any]]:
        header = tool_delta(id=call_id, type="function", index=index, name=name)
        body = pieces(arguments(args), 6)
        streamed = body[:-1] if last else body
        return [
            chunk({"tool_calls": [header]}, model=model),
            *(chunk({"tool_calls": [tool_delta(index=index, args=p)]}, model=model) for p in streamed),
        ]

    def flush(index: int, args: dict[str, Any]) -> dict[str, Any]:
        rest = pieces(arguments(args), 6)[-1]
        return chunk(
            {"tool_calls": [tool_delta(index=index, args=rest)]},
            "tool_calls",
            model=model,
            choice_extra={"stop_reason": None},
        )

    step1 = sse(
        role,
        *call(0, ids[0], "add", ADD_ARGS, last=False),
        *call(1, ids[1], "multiply", MULTIPLY_ARGS, last=True),
        flush(1, MULTIPLY_ARGS),
        usage_chunk(model, *STEP1_USAGE),
    )
    step2 = sse(
        role,
        *call(0, "chatcmpl-tool-1d2e3f4a5b6c7d8e", "final_answer", FINAL_ARGS, last=True),
        flush(0, FINAL_ARGS),
        usage_chunk(model, *STEP2_USAGE),
    )
    return Dialect(
        "vllm",
        "vllm-project/vllm vllm/entrypoints/openai/serving_chat.py (chat_completion_stream_generator): "
        "a role-only first chunk, a tool header DeltaToolCall(id, type, index, function=name only), "
        "and the arguments the parser held back flushed as `remaining_call` in the finish chunk; usage "
        "in a final choices-[] chunk",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
    )


def vllm_index0() -> Dialect:
    model = "Qwen/Qwen2.5-7B-Instruct"
    ids = ("chatcmpl-tool-c9ZCzB9b9NikK5kjPBXpFG", "chatcmpl-tool-HfzZPEVfQgvgpSJccb8Vr8")

    def call(call_id: str, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        header = tool_delta(index=0, id=call_id, type="function", name=name, args="")
        return [
            chunk({"tool_calls": [header]}, model=model),
            *(
                chunk({"tool_calls": [tool_delta(index=0, id="", type="function", args=p)]}, model=model)
                for p in pieces(arguments(args))
            ),
        ]

    role = chunk({"role": "assistant", "content": ""}, model=model)
    step1 = sse(
        role,
        *call(ids[0], "add", ADD_ARGS),
        *call(ids[1], "multiply", MULTIPLY_ARGS),
        chunk({}, "tool_calls", model=model),
        usage_chunk(model, *STEP1_USAGE),
    )
    step2 = sse(
        role,
        *call("chatcmpl-tool-Lm3Nb5Vc7Xz9Qw1Er2", "final_answer", FINAL_ARGS),
        chunk({}, "tool_calls", model=model),
        usage_chunk(model, *STEP2_USAGE),
    )
    return Dialect(
        "vllm-index0",
        "InternLM/lmdeploy#3412 (vLLM capture): both parallel calls at index 0, each header with its "
        "own id, continuations with id '' and no name",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
    )


def sglang() -> Dialect:
    model = "Qwen/Qwen3-8B"

    def call(call_id: str, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        header = tool_delta(index=0, id=call_id, type="function", name=name, args="")
        return [
            chunk({"tool_calls": [header]}, model=model),
            *(
                chunk({"tool_calls": [tool_delta(index=0, id=call_id, type="function", args=p)]}, model=model)
                for p in pieces(arguments(args))
            ),
        ]

    role = chunk({"role": "assistant", "content": None}, model=model)
    step1 = sse(
        role,
        *call("0", "add", ADD_ARGS),
        *call("1", "multiply", MULTIPLY_ARGS),
        chunk({}, "tool_calls", model=model),
        usage_chunk(model, *STEP1_USAGE),
    )
    step2 = sse(
        role,
        *call("0", "final_answer", FINAL_ARGS),
        chunk({}, "tool_calls", model=model),
        usage_chunk(model, *STEP2_USAGE),
    )
    return Dialect(
        "sglang",
        "InternLM/lmdeploy#3412 (SGLang capture) and sgl-project/sglang#6310: every call at index 0, "
        "ids '0', '1' repeated on every delta and restarting at '0' in the next response",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=("0", "1"),
        ids_sent_back=False,
    )


def _llama_cpp_chunk(model: str, delta: Any, finish: str | None = None, **top: Any) -> dict[str, Any]:
    body = chunk(delta, finish, model=model, system_fingerprint="b5481-d785f9c1", **top)
    body["choices"][0].pop("logprobs")
    return body


def _llama_cpp_finish(model: str, step_usage: tuple[int, int]) -> dict[str, Any]:
    timings = {
        "prompt_n": step_usage[0],
        "prompt_ms": 41.2,
        "predicted_n": step_usage[1],
        "predicted_ms": 612.5,
    }
    return _llama_cpp_chunk(model, {}, "tool_calls", usage=usage(*step_usage), timings=timings)


def llama_cpp_old() -> Dialect:
    model = "qwen2.5-7b-instruct-q4_k_m.gguf"

    def call(index: int, name: str, args: dict[str, Any], hidden_id: str) -> list[dict[str, Any]]:
        return [
            _llama_cpp_chunk(
                model,
                {
                    "tool_calls": [
                        {"index": index, "function": {"name": name, "id": hidden_id, "arguments": p}}
                    ]
                },
            )
            for p in pieces(arguments(args))
        ]

    role = _llama_cpp_chunk(model, {"role": "assistant", "content": None})
    step1 = sse(
        role,
        *call(0, "add", ADD_ARGS, "Yq0d2b8TtfdRvB7XkqcP4mWn1aZ3sL5e"),
        *call(1, "multiply", MULTIPLY_ARGS, "Jf6hN2pQ8rT4vX0zB3dG7kM1sW5yC9eA"),
        _llama_cpp_finish(model, STEP1_USAGE),
    )
    step2 = sse(
        role,
        *call(0, "final_answer", FINAL_ARGS, "Pk4Lm8Nq2Rs6Tu0Vw3Xy7Za1Bc5De9Fg"),
        _llama_cpp_finish(model, STEP2_USAGE),
    )
    return Dialect(
        "llama.cpp-old",
        "ggml-org/llama.cpp#13774 (the whole tool name repeated on every delta: `final_resultfinal_result"
        "final_result`) and the PR that fixed it, ggml-org/llama.cpp#13800 (the id was sent inside "
        "`function`, not on the tool call); usage and timings ride on the finish chunk",
        model,
        (step1, step2),
        TOTAL_USAGE,
    )


def llama_cpp() -> Dialect:
    model = "qwen2.5-7b-instruct-q4_k_m.gguf"
    ids = ("Yq0d2b8TtfdRvB7XkqcP4mWn1aZ3sL5e", "Jf6hN2pQ8rT4vX0zB3dG7kM1sW5yC9eA")

    def call(index: int, call_id: str, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        header = tool_delta(index=index, id=call_id, type="function", name=name, args="")
        return [
            _llama_cpp_chunk(model, {"tool_calls": [header]}),
            *(
                _llama_cpp_chunk(model, {"tool_calls": [tool_delta(index=index, args=p)]})
                for p in pieces(arguments(args))
            ),
        ]

    role = _llama_cpp_chunk(model, {"role": "assistant", "content": None})
    step1 = sse(
        role,
        *call(0, ids[0], "add", ADD_ARGS),
        *call(1, ids[1], "multiply", MULTIPLY_ARGS),
        _llama_cpp_finish(model, STEP1_USAGE),
    )
    step2 = sse(
        role,
        *call(0, "Pk4Lm8Nq2Rs6Tu0Vw3Xy7Za1Bc5De9Fg", "final_answer", FINAL_ARGS),
        _llama_cpp_finish(model, STEP2_USAGE),
    )
    return Dialect(
        "llama.cpp",
        "ggml-org/llama.cpp#13800 (name once, id on the tool call, empty arguments on the header) and "
        "llama-server captures in g0t4/ask-openai.nvim NOTES.md (role chunk with content null; finish "
        "chunk with an empty delta carrying usage and timings)",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
    )


def lm_studio() -> Dialect:
    model = "qwen/qwen3-8b"
    ids = ("193629320", "584201937")

    def call(index: int, call_id: str, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        header = tool_delta(index=index, id=call_id, type="function", name=name, args="")
        return [
            chunk({"role": "assistant", "tool_calls": [header]}, model=model, system_fingerprint=model),
            *(
                chunk(
                    {"tool_calls": [tool_delta(index=index, id="", type="function", name="", args=p)]},
                    model=model,
                    system_fingerprint=model,
                )
                for p in pieces(arguments(args))
            ),
        ]

    finish = chunk({}, "tool_calls", model=model, system_fingerprint=model)
    step1 = sse(
        *call(0, ids[0], "add", ADD_ARGS),
        *call(1, ids[1], "multiply", MULTIPLY_ARGS),
        finish,
        usage_chunk(model, *STEP1_USAGE),
    )
    step2 = sse(*call(0, "730184265", "final_answer", FINAL_ARGS), finish, usage_chunk(model, *STEP2_USAGE))
    return Dialect(
        "lm-studio",
        '0xPlaygrounds/rig#423 (LM Studio sends function name "" on argument chunks) and '
        'lmstudio-ai/lmstudio-bug-tracker#830 (numeric ids, empty ids); modelled: ids "" on continuations',
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
    )


_SIGNATURE = "CrICAdHtim827fQv1tX0aJ9xZ4pL2mK8sQ6wE3rT5yU7iO1pA=="


def _gemini_chunk(model: str, delta: Any, finish: str | None, step_usage: tuple[int, int]) -> dict[str, Any]:
    body = chunk(delta, finish, model=model, usage=usage(*step_usage))
    body["choices"][0].pop("logprobs")
    return body


def gemini() -> Dialect:
    model = "gemini-3-flash-preview"
    ids = ("jm4owj31", "q7xk2m9d")
    signature = {"extra_content": {"google": {"thought_signature": _SIGNATURE}}}
    add = tool_delta(id=ids[0], type="function", name="add", args=arguments(ADD_ARGS), **signature)
    multiply = tool_delta(id=ids[1], type="function", name="multiply", args=arguments(MULTIPLY_ARGS))
    final = tool_delta(
        id="function-call-7388291048816502210",
        type="function",
        name="final_answer",
        args=arguments(FINAL_ARGS),
    )
    prompt1, output1 = STEP1_USAGE
    prompt2, output2 = STEP2_USAGE
    step1 = sse(
        _gemini_chunk(model, {"role": "assistant", "tool_calls": [add]}, None, (prompt1, output1 - 12)),
        _gemini_chunk(model, {"role": "assistant", "tool_calls": [multiply]}, "stop", STEP1_USAGE),
    )
    step2 = sse(
        _gemini_chunk(model, {"role": "assistant", "tool_calls": [final]}, None, (prompt2, output2 - 5)),
        _gemini_chunk(model, {"role": "assistant"}, "stop", STEP2_USAGE),
    )
    return Dialect(
        "gemini",
        "noho/dayu-agent#45 (captured Gemini SSE: whole calls without `index`, "
        "extra_content.google.thought_signature on the call), googleapis/python-genai#2868 "
        "(finish_reason 'stop' with tool calls when streaming), "
        "https://ai.google.dev/gemini-api/docs/thought-signatures (the signature must come back, else "
        "400); cumulative usage on every chunk: ogx-ai/ogx#5122, pydantic/pydantic-ai#1577",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
        signatures=(_SIGNATURE, None),
    )


def gemini_split() -> Dialect:
    model = "gemini-2.5-flash"
    ids = ("function-call-1", "function-call-2")

    def call(call_id: str, name: str, args: dict[str, Any], extra: dict[str, Any]) -> list[dict[str, Any]]:
        parts = pieces(arguments(args), 5)
        header = tool_delta(index=None, id=call_id, type="function", name=name, args=parts[0], **extra)
        return [
            _gemini_chunk(model, {"role": "assistant", "tool_calls": [header]}, None, (STEP1_USAGE[0], 3)),
            *(
                _gemini_chunk(
                    model, {"tool_calls": [tool_delta(index=None, args=p)]}, None, (STEP1_USAGE[0], 3)
                )
                for p in parts[1:]
            ),
        ]

    signature = tool_delta(index=None, extra_content={"google": {"thought_signature": _SIGNATURE}})
    step1 = sse(
        *call(ids[0], "add", ADD_ARGS, {}),
        _gemini_chunk(model, {"tool_calls": [signature]}, None, (STEP1_USAGE[0], 4)),
        *call(ids[1], "multiply", MULTIPLY_ARGS, {}),
        _gemini_chunk(model, {"role": "assistant"}, "stop", STEP1_USAGE),
    )
    final = call("function-call-3", "final_answer", FINAL_ARGS, {})
    step2 = sse(*final, _gemini_chunk(model, {"role": "assistant"}, "stop", STEP2_USAGE))
    return Dialect(
        "gemini-split",
        "open-webui/computer#224 (arguments split across index-less deltas, the thought signature as a "
        "standalone metadata-only delta; 530 bogus calls in 10 steps per issue 9) and "
        "NousResearch/hermes-agent#62937 (parallel Gemini calls glued into one); modelled: index null, "
        "the signature delta placed right after the first call, cumulative usage on every chunk",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
        signatures=(_SIGNATURE, None),
    )


def groq() -> Dialect:
    model = "llama-3.3-70b-versatile"
    ids = ("call_8xj2", "call_t4kq")

    def x_groq(step_usage: tuple[int, int] | None) -> dict[str, Any]:
        if step_usage is None:
            return {"x_groq": {"id": "req_01jx7d2m9kf3"}}
        prompt, completion = step_usage
        return {
            "x_groq": {
                "id": "req_01jx7d2m9kf3",
                "usage": {
                    "queue_time": 0.0213,
                    "prompt_tokens": prompt,
                    "prompt_time": 0.0091,
                    "completion_tokens": completion,
                    "completion_time": 0.0512,
                    "total_tokens": prompt + completion,
                    "total_time": 0.0603,
                },
            }
        }

    def reply(calls: list[dict[str, Any]], step_usage: tuple[int, int]) -> SseStream:
        return sse(
            chunk(
                {"role": "assistant", "content": None},
                model=model,
                system_fingerprint="fp_3f39",
                **x_groq(None),
            ),
            chunk({"tool_calls": calls}, model=model, system_fingerprint="fp_3f39"),
            chunk({}, "tool_calls", model=model, system_fingerprint="fp_3f39", **x_groq(step_usage)),
        )

    step1 = reply(
        [
            tool_delta(id=ids[0], type="function", name="add", args=arguments(ADD_ARGS), index=0),
            tool_delta(id=ids[1], type="function", name="multiply", args=arguments(MULTIPLY_ARGS), index=1),
        ],
        STEP1_USAGE,
    )
    step2 = reply(
        [
            tool_delta(
                id="call_m9vd", type="function", name="final_answer", args=arguments(FINAL_ARGS), index=0
            )
        ],
        STEP2_USAGE,
    )
    return Dialect(
        "groq",
        "https://console.groq.com/docs/api-reference#chat-create (streamed usage in `x_groq.usage` on the "
        "last chunk; whole tool calls in one delta)",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
    )


MISTRAL_STREAM_OPTIONS_422 = {
    "object": "error",
    "message": {
        "detail": [
            {
                "type": "extra_forbidden",
                "loc": ["body", "stream_options", "include_usage"],
                "msg": "Extra inputs are not permitted",
                "input": True,
                "url": "https://errors.pydantic.dev/2.10/v/extra_forbidden",
            }
        ]
    },
    "type": "invalid_request_error",
    "param": None,
    "code": None,
}


def mistral() -> Dialect:
    model = "mistral-small-latest"
    ids = ("D681PevKs", "Tr1mP4sQx")

    def reply(calls: list[dict[str, Any]], step_usage: tuple[int, int]) -> SseStream:
        return sse(
            chunk({"role": "assistant", "content": ""}, model=model),
            chunk({"tool_calls": calls}, "tool_calls", model=model, usage=usage(*step_usage)),
        )

    step1 = reply(
        [
            tool_delta(id=ids[0], name="add", args=arguments(ADD_ARGS), index=0),
            tool_delta(id=ids[1], name="multiply", args=arguments(MULTIPLY_ARGS), index=1),
        ],
        STEP1_USAGE,
    )
    step2 = reply(
        [tool_delta(id="Kz2Wq8Lm1", name="final_answer", args=arguments(FINAL_ARGS), index=0)],
        STEP2_USAGE,
    )
    return Dialect(
        "mistral",
        "openai/openai-agents-python#442 and dnakov/anon-kode#53 (422 extra_forbidden on stream_options, the "
        "message an object); ml-explore/mlx-lm#1375 (Mistral templates need 9-character alphanumeric "
        "tool call ids); whole calls, finish_reason and usage in the last delta",
        model,
        (step1, step2),
        TOTAL_USAGE,
        refusals=(HttpError(422, MISTRAL_STREAM_OPTIONS_422),),
        falls_back=frozenset({"stream_options"}),
        call_ids=ids,
    )


DEEPSEEK_REASONING = "The user asks for two independent calculations, so I call add and multiply together."
DEEPSEEK_TOOL_CHOICE_400 = {
    "error": {
        "message": "deepseek-reasoner does not support tool_choice=required in thinking mode; use auto or none.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_request_error",
    }
}


def deepseek() -> Dialect:
    model = "deepseek-reasoner"
    ids = ("call_00_Xr3kP9mQ2vL8nB4tW6yZ1aCd", "call_01_Hs5jD7fG0kL2mN4pQ6rS8tUv")
    role = chunk({"role": "assistant", "content": None, "reasoning_content": ""}, model=model)
    thoughts = [chunk({"reasoning_content": p}, model=model) for p in pieces(DEEPSEEK_REASONING, 16)]
    step1 = sse(
        role,
        *thoughts,
        *streamed_call(model, 0, ids[0], "add", ADD_ARGS),
        *streamed_call(model, 1, ids[1], "multiply", MULTIPLY_ARGS),
        chunk({"content": ""}, "tool_calls", model=model),
        usage_chunk(model, *STEP1_USAGE),
    )
    step2 = sse(
        role,
        *(chunk({"reasoning_content": p}, model=model) for p in pieces("Both results are in.", 16)),
        *(chunk({"content": p}, model=model) for p in pieces(ANSWER, 6)),
        chunk({"content": ""}, "stop", model=model),
        usage_chunk(model, *STEP2_USAGE),
    )
    return Dialect(
        "deepseek",
        "https://api-docs.deepseek.com/guides/thinking_mode#tool-calls (`reasoning_content` deltas; it must "
        "be passed back on assistant messages with tool calls, else 400 'The reasoning_content in the "
        "thinking mode must be passed back to the API', qwersyk/Newelle#404); issue 9 (400 on "
        "tool_choice 'required'; modelled wording); step 2 answers in plain content under 'auto'",
        model,
        (step1, step2),
        TOTAL_USAGE,
        refusals=(HttpError(400, DEEPSEEK_TOOL_CHOICE_400),),
        falls_back=frozenset({"tool_choice"}),
        call_ids=ids,
        reasoning=DEEPSEEK_REASONING,
        reasoning_sent_back=True,
        answers_in_content=True,
    )


_AZURE_SAFE = {
    name: {"filtered": False, "severity": "safe"} for name in ("hate", "self_harm", "sexual", "violence")
}


def azure() -> Dialect:
    model = "gpt-4o-2024-11-20"
    ids = ("call_Az9mQ2wE4rT6yU8iO0pL3kJ5", "call_Bx1nW3eR5tY7uI9oP2aS4dF6")
    prompt_filter = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _AZURE_SAFE}],
    }

    def annotation(end: int) -> dict[str, Any]:
        return {
            "choices": [
                {
                    "index": 0,
                    "finish_reason": None,
                    "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": end},
                    "content_filter_results": _AZURE_SAFE,
                }
            ],
            "created": CREATED,
            "id": "chatcmpl-7f3a",
            "model": model,
            "object": "chat.completion.chunk",
            "system_fingerprint": "fp_ee1d74bde0",
        }

    first = chunk({"role": "assistant", "content": None}, model=model)
    step1 = sse(
        prompt_filter,
        first,
        *streamed_call(model, 0, ids[0], "add", ADD_ARGS),
        annotation(40),
        *streamed_call(model, 1, ids[1], "multiply", MULTIPLY_ARGS),
        chunk({}, "tool_calls", model=model),
        annotation(80),
        usage_chunk(model, *STEP1_USAGE),
    )
    step2 = sse(
        prompt_filter,
        first,
        *streamed_call(model, 0, "call_Cy2oE4rT6yU8iO0pA2sD4fG6", "final_answer", FINAL_ARGS),
        chunk({}, "tool_calls", model=model),
        annotation(120),
        usage_chunk(model, *STEP2_USAGE),
    )
    return Dialect(
        "azure",
        "https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter (streaming: a first "
        "chunk with empty choices and prompt_filter_results; asynchronous-filter annotation chunks whose "
        "choice has content_filter_results/offsets and no delta)",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
    )


OPENROUTER_PROCESSING = ": OPENROUTER PROCESSING"
OPENROUTER_THOUGHT = "I'll work out both at once."


def openrouter() -> Dialect:
    model = "anthropic/claude-sonnet-4"
    ids = ("toolu_vrtx_01AbCdEfGhIjKlMnOpQr", "toolu_vrtx_01StUvWxYzAbCdEfGhIj")

    def reply(body: list[dict[str, Any]], step_usage: tuple[int, int]) -> SseStream:
        lines = [OPENROUTER_PROCESSING, "", OPENROUTER_PROCESSING, ""]
        lines += events(*body[:3])
        lines += [OPENROUTER_PROCESSING, ""]
        lines += events(*body[3:], chunk({}, "tool_calls", model=model, provider="Anthropic"))
        lines += events(usage_chunk(model, *step_usage, provider="Anthropic"))
        return SseStream((*lines, DONE, ""))

    first = chunk({"role": "assistant", "content": ""}, model=model, provider="Anthropic")
    thought = [
        chunk({"content": p}, model=model, provider="Anthropic") for p in pieces(OPENROUTER_THOUGHT, 9)
    ]
    step1 = reply(
        [
            first,
            *thought,
            *streamed_call(model, 0, ids[0], "add", ADD_ARGS),
            *streamed_call(model, 1, ids[1], "multiply", MULTIPLY_ARGS),
        ],
        STEP1_USAGE,
    )
    step2 = reply(
        [first, *streamed_call(model, 0, "toolu_vrtx_01KlMnOpQrStUvWxYz", "final_answer", FINAL_ARGS)],
        STEP2_USAGE,
    )
    return Dialect(
        "openrouter",
        "https://openrouter.ai/docs/api-reference/streaming (SSE comments `: OPENROUTER PROCESSING` "
        "between events; usage in the last chunk); a Claude-style sentence before the tool calls (issue 9)",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
        thought=OPENROUTER_THOUGHT,
    )


def together() -> Dialect:
    model = "Qwen/Qwen2.5-72B-Instruct-Turbo"
    ids = ("call_7k2p9x4m1q8w3e6r5t0y", "call_2b5n8v1c4x7z0a3s6d9f")

    def reply(body: list[dict[str, Any]], step_usage: tuple[int, int]) -> SseStream:
        shown = usage(*step_usage)
        return sse(
            *body,
            chunk({}, "tool_calls", model=model, usage=shown),
            usage_chunk(model, *step_usage),
        )

    first = chunk({"role": "assistant", "content": ""}, model=model)
    step1 = reply(
        [
            first,
            *streamed_call(model, 0, ids[0], "add", ADD_ARGS),
            *streamed_call(model, 1, ids[1], "multiply", MULTIPLY_ARGS),
        ],
        STEP1_USAGE,
    )
    step2 = reply(
        [first, *streamed_call(model, 0, "call_0q9w8e7r6t5y4u3i2o1p", "final_answer", FINAL_ARGS)],
        STEP2_USAGE,
    )
    return Dialect(
        "together",
        "camel-ai/camel#4217 (Together, Groq, DeepSeek, SiliconFlow attach `usage` to more than one chunk "
        "of a stream; summing it double-counts); modelled: usage on the finish chunk and again in a "
        "choices-[] chunk",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
    )


def litellm_proxy() -> Dialect:
    model = "claude-3-7-sonnet"
    ids = ("tooluse_BawIVFHuQ2uaPLDBdWlblA", "tooluse_Kq8rT2mW5xY1zA4bC7dE0f")

    def call(index: int, call_id: str, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        header = tool_delta(id=call_id, type="function", name=name, args="", index=index)
        return [
            chunk({"content": "", "role": "assistant", "tool_calls": [header]}, model=model),
            *(
                chunk(
                    {"tool_calls": [tool_delta(id=call_id, type="function", args=p, index=index)]},
                    model=model,
                )
                for p in pieces(arguments(args))
            ),
        ]

    def summary(*calls: tuple[int, str, str, dict[str, Any]]) -> dict[str, Any]:
        whole = [
            tool_delta(id=i, type="function", name=n, args=arguments(a), index=x) for x, i, n, a in calls
        ]
        return chunk({"content": "", "role": "assistant", "tool_calls": whole}, model=model)

    step1 = sse(
        *call(0, ids[0], "add", ADD_ARGS),
        *call(1, ids[1], "multiply", MULTIPLY_ARGS),
        summary((0, ids[0], "add", ADD_ARGS), (1, ids[1], "multiply", MULTIPLY_ARGS)),
        chunk({}, "tool_calls", model=model),
        usage_chunk(model, *STEP1_USAGE),
    )
    final_id = "tooluse_Zx9cV8bN7mL6kJ5hG4fD3s"
    step2 = sse(
        *call(0, final_id, "final_answer", FINAL_ARGS),
        summary((0, final_id, "final_answer", FINAL_ARGS)),
        chunk({}, "tool_calls", model=model),
        usage_chunk(model, *STEP2_USAGE),
    )
    return Dialect(
        "litellm-proxy",
        "BerriAI/litellm#20480 (the tool call id sent on every delta, then a trailing chunk repeating "
        "each whole call) and BerriAI/litellm#11407 (proxy chunk shape: content '' and role on deltas)",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
    )


def object_arguments() -> Dialect:
    model = "llama3.1"
    ids = ("call_3f8a1c2e", "call_9b4d7e0f")

    def reply(calls: list[dict[str, Any]], step_usage: tuple[int, int]) -> SseStream:
        return sse(
            chunk({"role": "assistant", "content": "", "tool_calls": calls}, model=model),
            chunk({}, "tool_calls", model=model),
            usage_chunk(model, *step_usage),
        )

    step1 = reply(
        [
            tool_delta(id=ids[0], type="function", index=0, name="add", args=ADD_ARGS),
            tool_delta(id=ids[1], type="function", index=1, name="multiply", args=MULTIPLY_ARGS),
        ],
        STEP1_USAGE,
    )
    step2 = reply(
        [tool_delta(id="call_5e2b8d1a", type="function", index=0, name="final_answer", args=FINAL_ARGS)],
        STEP2_USAGE,
    )
    return Dialect(
        "arguments-object",
        "BerriAI/litellm#37792 (LiteLLM for Ollama streams `function.arguments` as a JSON object, not a "
        "string; the same shape from TGI and llama.cpp per issue 9)",
        model,
        (step1, step2),
        TOTAL_USAGE,
        call_ids=ids,
    )


DIALECTS: dict[str, Callable[[], Dialect]] = {
    "openai": openai,
    "ollama-0.4": ollama_old,
    "ollama": ollama,
    "vllm": vllm,
    "vllm-index0": vllm_index0,
    "sglang": sglang,
    "llama.cpp-old": llama_cpp_old,
    "llama.cpp": llama_cpp,
    "lm-studio": lm_studio,
    "gemini": gemini,
    "gemini-split": gemini_split,
    "groq": groq,
    "mistral": mistral,
    "deepseek": deepseek,
    "azure": azure,
    "openrouter": openrouter,
    "together": together,
    "litellm-proxy": litellm_proxy,
    "arguments-object": object_arguments,
}
