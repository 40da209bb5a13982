"""A bare Gradio hello-world app: the cold-start baseline.

python -m support.hello_world --port 7861
"""

import argparse

import gradio as gr


def greet(name: str) -> str:
    return f"Hello {name}!"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    gr.Interface(greet, "text", "text").launch(server_port=args.port)
