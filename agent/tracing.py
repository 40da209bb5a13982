"""Observability: one trace per turn for whatever tracer is configured, and one log line per turn.

Tracing is LangChain's own callback machinery. `ObservedTurn.start` configures
the turn's callback manager from the callbacks the caller passes and from the
environment (`LANGSMITH_TRACING=true` adds LangSmith's tracer), and opens the
root run. Each step is a child chain run; the step's child manager goes to the
model and the tools in their `RunnableConfig`, so a tracer sees one tree:

    agent turn                      inputs: the question; outputs: the answer (or the failure)
    ├── step 1
    │   ├── step 1 · ChatOpenAI     the model call
    │   ├── add                     the step's tool calls, siblings (they run in parallel)
    │   └── add
    ├── step 2
    │   ├── step 2 · ChatOpenAI
    │   ├── approval · write_file   the wait for a person's decision (outputs: the decision)
    │   └── write_file              the call, if it was approved
    └── step 3 ...

Runs carry metadata to group one conversation (`thread_id`: the per-session id
the UI passes, never Gradio's session hash), the model and the backend label;
the offline model's runs are tagged `offline-model`. What reaches a tracer is
the question, messages, tool arguments and results: never settings, so no key.

With no tracer configured no run is opened at all: the model and the tools get
the config they would get without this module.

Whatever the tracer, every turn also writes one INFO line (JSON) on the
`agent.turns` logger: outcome, steps, tool calls, tokens, first-token and total
time, backend and model, how the question came (`via`: "page", "api" or "mcp ask_agent",
as the caller says), and each approval decision with the time spent waiting for
it (`waiting_s`, which `total_s` includes); the question and the reasons given for
denials only when `AGENT_LOG_QUESTIONS=1`. Visitors choose some of these (a model
name with their own key, a question, a denial's reason), so each text is cut to
`LOG_TEXT_CHARS` (the question to `LOG_QUESTION_CHARS`) with a marker saying how
much was left out, and at most `LOG_APPROVALS` decisions are listed: a turn's line
stays a few kilobytes whatever a visitor sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForChainRun,
    Callbacks,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig

from agent.errors import redact
from agent.events import (
    ApprovalDecided,
    Failed,
    Finished,
)
from agent.figures import TurnFigures
from agent.models import backend_label
from agent.offline import MODEL_NAME, OfflineArithmeticModel
from agent.settings import Settings

TURN_RUN_NAME = "agent turn"
OFFLINE_TAG = "offline-model"
CANCELLED = "the turn was stopped before it finished (Stop, a closed tab or a dropped client)"
LOG_TEXT_CHARS = 200
LOG_QUESTION_CHARS = 1000
LOG_APPROVALS = 10

log = logging.getLogger("agent.turns")
_OUTCOMES = {Finished: "finished", Failed: "failed", type(None): "cancelled"}


class TurnFailed(Exception):
    """How a failed turn is recorded on its root run: the failure's kind and message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def model_label(settings: Settings, chat_model: BaseChatModel | None = None) -> str:
    """The model's class as LangChain users know it (our `ChatOpenAI` subclass is a `ChatOpenAI`)."""
    if chat_model is not None:
        return chat_model.get_name()
    return OfflineArithmeticModel.__name__ if settings.offline else "ChatOpenAI"


def model_name(settings: Settings) -> str:
    """The model asked, as operators and trace viewers see it (a key typed as a model is hidden)."""
    return MODEL_NAME if settings.offline else redact(settings.model, settings)


def backend_name(settings: Settings) -> str:
    """The backend label (which names the model), hidden the same way."""
    return redact(backend_label(settings), settings)


@dataclass
class StepTrace:
    """One step's run: the configs that nest its model call and tool calls under it."""

    step: int
    model_run_name: str
    children: AsyncCallbackManager | None = None
    outputs: dict[str, Any] = field(default_factory=dict)

    def model_config(self) -> RunnableConfig | None:
        """The model call's run, nested under the step's (None when nobody traces)."""
        if self.children is None:
            return None
        return {"callbacks": self.children, "run_name": self.model_run_name}

    def tool_config(self) -> RunnableConfig | None:
        return None if self.children is None else {"callbacks": self.children}

    @asynccontextmanager
    async def waiting_for_approval(
        self, name: str, arguments: str
    ) -> AsyncIterator[Callable[[ApprovalDecided], None]]:
        """A run for the wait around the block (the block records the decision as its outputs)."""
        outputs: dict[str, Any] = {}

        def record(decision: ApprovalDecided) -> None:
            outputs.update(
                approved=decision.approved, by=decision.by, reason=decision.reason, waited_s=decision.waited_s
            )

        if self.children is None:
            yield record
            return
        run = await self.children.on_chain_start(
            None, {"tool": name, "arguments": arguments}, name=f"approval · {name}"
        )
        try:
            yield record
        except BaseException as error:
            await run.on_chain_error(error)
            raise
        await run.on_chain_end(outputs)

    def note_results(self, results: Sequence[ToolMessage]) -> None:
        self.outputs = {
            "tool_results": [
                {"name": result.name, "status": result.status, "output": result.text} for result in results
            ]
        }


class ObservedTurn:
    """One turn's root run (when a tracer listens) and its log line."""

    def __init__(
        self,
        question: str,
        settings: Settings,
        figures: TurnFigures,
        root: AsyncCallbackManagerForChainRun | None,
        model_label: str,
        conversation_id: str | None,
        via: str | None = None,
    ) -> None:
        self._question = question
        self._settings = settings
        self._figures = figures
        self._root = root
        self._model_label = model_label
        self._conversation_id = conversation_id
        self._via = via

    @classmethod
    async def start(
        cls,
        question: str,
        settings: Settings,
        figures: TurnFigures,
        *,
        chat_model: BaseChatModel | None = None,
        callbacks: Callbacks = None,
        conversation_id: str | None = None,
        via: str | None = None,
    ) -> ObservedTurn:
        """Open the root run if the caller or the environment configured a tracer."""
        question = question[: settings.max_input_chars]
        metadata: dict[str, Any] = {
            "model": cut(model_name(settings)),
            "backend": cut(backend_name(settings)),
        }
        if conversation_id:
            metadata["thread_id"] = conversation_id
        manager = AsyncCallbackManager.configure(
            callbacks,
            inheritable_tags=[OFFLINE_TAG] if settings.offline else None,
            inheritable_metadata=metadata,
        )
        root = None
        if manager.handlers:
            root = await manager.on_chain_start(None, {"question": question}, name=TURN_RUN_NAME)
        return cls(question, settings, figures, root, model_label(settings, chat_model), conversation_id, via)

    @asynccontextmanager
    async def step(self, step: int) -> AsyncIterator[StepTrace]:
        """The step's run around the block; it ends with the block, as the block ends."""
        trace = StepTrace(step, f"step {step} · {self._model_label}")
        if self._root is None:
            yield trace
            return
        run = await self._root.get_child().on_chain_start(None, {"step": step}, name=f"step {step}")
        trace.children = run.get_child()
        try:
            yield trace
        except BaseException as error:
            await run.on_chain_error(error)
            raise
        await run.on_chain_end(trace.outputs)

    async def finish(self, outcome: Finished | Failed) -> None:
        """Log the turn, and end the root run with the answer or the failure.

        The line is written first, so a Stop arriving during the await (the run
        still ends: its callbacks are shielded) cannot lose it.
        """
        self._log(outcome)
        if self._root is None:
            return
        if isinstance(outcome, Finished):
            await self._root.on_chain_end({"answer": outcome.answer, "tools_used": list(outcome.tools_used)})
        else:
            await self._root.on_chain_error(TurnFailed(outcome.kind, outcome.message))

    async def cancelled(self, reason: str | None = None) -> None:
        """Log the turn (with `reason`, when the consumer gave one), and end the root run as cancelled."""
        self._log(None, reason)
        if self._root is not None:
            await self._root.on_chain_error(asyncio.CancelledError(CANCELLED))

    def _log(self, outcome: Finished | Failed | None, reason: str | None = None) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        figures = self._figures
        fields: dict[str, Any] = {"outcome": _OUTCOMES[type(outcome)]}
        if isinstance(outcome, Failed):
            fields["failure"] = outcome.kind
            fields["cause"] = outcome.cause
        if reason is not None:
            fields["reason"] = cut(reason)
        fields |= {
            "steps": figures.steps,
            "tool_calls": figures.tool_calls,
            "tokens_in": figures.input_tokens,
            "tokens_out": figures.output_tokens,
            "first_token_s": None if figures.first_token_s is None else round(figures.first_token_s, 3),
            "total_s": round(figures.end().total_s or 0.0, 3),
            "waiting_s": round(figures.waiting_s, 3),
            "backend": cut(backend_name(self._settings)),
            "model": cut(model_name(self._settings)),
            "conversation": None if self._conversation_id is None else cut(self._conversation_id),
            "via": self._via,
        }
        if figures.approvals:
            listed = figures.approvals[:LOG_APPROVALS]
            fields["approvals"] = [self._approval_fields(decision) for decision in listed]
            if len(figures.approvals) > len(listed):
                fields["approvals_not_listed"] = len(figures.approvals) - len(listed)
        if self._settings.log_questions:
            fields["question"] = cut(self._question, LOG_QUESTION_CHARS)
        log.info("%s", json.dumps(fields, ensure_ascii=False), extra={"turn": fields})

    def _approval_fields(self, decision: ApprovalDecided) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "tool": cut(decision.name),
            "approved": decision.approved,
            "by": decision.by,
            "waited_s": round(decision.waited_s, 3),
        }
        if self._settings.log_questions and decision.reason:
            fields["reason"] = cut(decision.reason)
        return fields


def cut(text: str, limit: int = LOG_TEXT_CHARS) -> str:
    """`text`, or its first `limit` characters and a marker saying how many more there were."""
    return text if len(text) <= limit else f"{text[:limit]}…[{len(text) - limit:,} more characters]"
