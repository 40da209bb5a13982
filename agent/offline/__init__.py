"""The offline model: plays the agent for arithmetic when there is no API key, with no network.

- `reading`: a question's text → an expression that `ast` parses (number words and phrases
  such as "to the power of" become symbols); nothing is ever evaluated by Python.
- `planning`: the expression → steps of tool calls, independent calls in the same step.
- `model`: `OfflineArithmeticModel`, a LangChain chat model that reads the conversation,
  takes the next step or answers, and streams it the way OpenAI does.

It leans only on `agent.tools`; the executor runs it like any other chat model.
"""

from agent.offline.model import MODEL_NAME, OfflineArithmeticModel

__all__ = ["MODEL_NAME", "OfflineArithmeticModel"]
