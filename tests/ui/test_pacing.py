from ui.pacing import UpdateBudget


def test_the_frame_grows_with_active_streams_to_keep_the_server_budget():
    budget = UpdateBudget(min_frame_s=0.04, updates_per_s=500)
    assert budget.frame_s() == 0.04
    with budget.stream():
        assert budget.frame_s() == 0.04
    streams = [budget.stream() for _ in range(100)]
    for stream in streams:
        stream.__enter__()
    assert budget.active == 100 and budget.frame_s() == 0.2
    for stream in streams:
        stream.__exit__(None, None, None)
    assert budget.active == 0


def test_a_stream_that_fails_still_leaves_the_budget():
    budget = UpdateBudget()
    try:
        with budget.stream():
            raise RuntimeError
    except RuntimeError:
        pass
    assert budget.active == 0


def test_pacing_can_be_switched_off():
    budget = UpdateBudget(min_frame_s=0, updates_per_s=0)
    with budget.stream():
        assert budget.frame_s() == 0
