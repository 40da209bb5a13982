"""Reload mode (`gradio app.py`) watching the project's code only."""

from __future__ import annotations

from pathlib import Path


def watch_only_project_code(app_file: Path) -> None:
    """In reload mode, watch agent/, ui/ and `app_file`, not the whole directory.

    Gradio polls every .py file under the app's directory 20 times a second: with the README's
    `.venv` inside, that idles at most of a core. It watches directories only, so the app file is
    watched through a symlink in a directory of its own (under `.gradio/`, which git ignores).
    """
    from gradio import http_server

    root = app_file.resolve().parent
    watched = http_server.GRADIO_WATCH_DIRS
    if not any(Path(directory).resolve() == root for directory in watched):
        return
    link = root / ".gradio" / "watch" / app_file.name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(root / app_file.name)
    watched[:] = [str(root / "agent"), str(root / "ui"), str(link.parent)]
    print(f"Reload mode: watching agent/, ui/ and {app_file.name}", flush=True)
