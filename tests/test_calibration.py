"""The calibration figures every benchmark prints next to its results."""

import pytest

from support.calibration import HELLO_WORLD, Calibration, calibrate, cpython_loop_s, start_once


def test_the_loop_really_adds_and_takes_longer_for_more_additions():
    short = min(cpython_loop_s(10_000) for _ in range(3))
    long = min(cpython_loop_s(1_000_000) for _ in range(3))
    assert 0 < short < long


def test_the_line_names_each_figure_with_its_unit():
    line = Calibration(loop_s=2.134, hello_world_s=3.25, load_average=1.5).line()
    assert line == (
        "calibration: CPython loop of 10 M additions 2.13 s, "
        "bare Gradio hello world first page 3.25 s, load average 1.50"
    )


@pytest.mark.slow
def test_the_hello_world_is_started_served_and_stopped():
    listening, served = start_once(HELLO_WORLD)
    assert 0 < listening <= served
    figures = calibrate(runs=1)
    assert figures.loop_s > 0 and figures.hello_world_s > 0
