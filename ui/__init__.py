"""The Gradio side of the app: everything between the agent's events and the browser.

- `chat`: the chat function Gradio streams (one turn: events → messages); `view`: the pure
  events → messages fold; `pacing`: display frames and the server-wide update budget;
  `stopping`: Stop as a signal to the running turn.
- `live_turn`, `chatbot`: the ChatInterface and Chatbot that keep a turn's updates small.
- `history`, `safety`: the conversation a session keeps, trimmed and safe to render.
- `guard`: the ASGI middleware in front of Gradio; `page`: the page's texts, CSS and script;
  `reload`: reload mode watching the project's code only.

It reaches the engine only through `agent` and `agent.events`, and knows no LangChain chunk.
"""
