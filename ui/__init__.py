"""The Gradio side: agent events → chat messages, history, update pacing. Knows no LangChain chunk."""
