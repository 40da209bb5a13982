from ui.live_turn import newest_turns


def turn(n: int) -> list[dict]:
    return [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}]


def test_newest_turns_keeps_whole_turns_within_the_limit():
    history = turn(1) + turn(2) + turn(3)
    assert newest_turns(history, 6) is history
    assert newest_turns(history, 5) == turn(2) + turn(3)
    assert newest_turns(history, 3) == turn(3)
    assert newest_turns(history, 1) == []
