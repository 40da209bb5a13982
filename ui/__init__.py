"""The Gradio side: agent events → chat messages (`view`), history in and out, update pacing, the Stop
signal, the Chatbots a turn streams into, and the guard in front of a public app. Knows no LangChain
chunk: it reads only `agent`'s public entry and `agent.events`."""
