"""The agent engine: tools, models, the per-request event handler and the executor.

`run_agent(question, history, settings)` is the entry point: an async iterator
of the events in `agent.events`. `agent_turn(...)` gives the same turn as a
context manager yielding its `EventChannel`, for consumers that read events in
batches. `agent.settings` reads every setting (engine and server) from the
environment. Nothing here imports Gradio.
"""

from agent.channel import EventChannel
from agent.executor import agent_turn, run_agent
from agent.models import backend_label, preload
from agent.settings import ModelNotAllowed, ServerSettings, Settings
from agent.tools import display_number

__all__ = [
    "EventChannel",
    "ModelNotAllowed",
    "ServerSettings",
    "Settings",
    "agent_turn",
    "backend_label",
    "display_number",
    "preload",
    "run_agent",
]
