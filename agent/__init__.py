"""The agent engine: from a question to a stream of events. Nothing here imports Gradio.

- `agent_turn(question, history, settings)` is the one entry: it runs the turn as a task and
  yields its `EventChannel`; `run_agent(...)` is the same turn as an async iterator of events.
- `events`: every event a turn can produce, the only vocabulary shared with the UI; `channel`: the
  turn's queue; `reply`: the model's streamed chunks → the assembled reply and its events.
- `executor`: the loop (stream the model, run the tool calls, feed results back, stop);
  `tools`: the arithmetic tools and `final_answer`; `toolbox`: the tools a turn may call (those plus
  MCP servers'), built once at start-up; `mcp/`: MCP servers from a config file, their tools in the toolbox;
  `approval`: which calls wait for a
  person's decision, and the turn's `Approvals` that receives it.
- `bounds`: what part of a conversation is kept (one rule; each caller brings its limits).
- `settings`: the one reader of the environment; `models`: the model for a turn;
  `openai_compat`: what other OpenAI-compatible servers send; `errors`: the failure catalogue (what can go wrong, in words
  for a person, and whether to retry); `figures`: a turn's figures, counted once for its footer and its log line;
  `tracing`: the turn as one traced run and one log line.
- `offline/`: the offline model, a wing of its own.
"""

from agent.approval import Approvals, Decision, NobodyToAsk, needs_approval
from agent.bounds import newest_within
from agent.channel import EventChannel
from agent.errors import refused_input
from agent.executor import agent_turn, run_agent
from agent.figures import TurnFigures
from agent.mcp import McpServers, start_configured
from agent.models import backend_label, preload
from agent.settings import ModelNotAllowed, ServerSettings, Settings
from agent.toolbox import ARITHMETIC, BUILT_IN, Toolbox
from agent.tools import FINAL_ANSWER, display_number

__all__ = [
    "ARITHMETIC",
    "BUILT_IN",
    "FINAL_ANSWER",
    "Approvals",
    "Decision",
    "EventChannel",
    "McpServers",
    "ModelNotAllowed",
    "NobodyToAsk",
    "ServerSettings",
    "Settings",
    "Toolbox",
    "TurnFigures",
    "agent_turn",
    "backend_label",
    "display_number",
    "needs_approval",
    "newest_within",
    "preload",
    "refused_input",
    "run_agent",
    "start_configured",
]
