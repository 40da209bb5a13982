import importlib.util
import sys

import pytest

from ui.live_turn import _skip_absent_matplotlib, newest_turns


def turn(n: int) -> list[dict]:
    return [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}]


def test_newest_turns_keeps_whole_turns_within_the_limit():
    history = turn(1) + turn(2) + turn(3)
    assert newest_turns(history, 6) is history
    assert newest_turns(history, 5) == turn(2) + turn(3)
    assert newest_turns(history, 3) == turn(3)
    assert newest_turns(history, 1) == []


def test_an_absent_matplotlib_is_marked_absent_once_so_gradio_stops_searching_for_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    _skip_absent_matplotlib()
    with pytest.raises(ImportError):
        import matplotlib  # noqa: F401


def test_an_installed_matplotlib_is_left_to_import_normally(monkeypatch):
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    _skip_absent_matplotlib()
    assert "matplotlib" not in sys.modules
