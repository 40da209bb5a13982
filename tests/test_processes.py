"""Served processes: their output is read as it is printed, so a chatty process never blocks."""

import sys

import pytest

from deploy.processes import ServedProcess

pytestmark = pytest.mark.slow

PRINT_A_LOT = "import sys\nfor n in range(20_000): print(f'log line {n:05d} ' + 'x' * 40)\nprint('done')\n"


def test_a_process_that_prints_more_than_a_pipe_holds_is_never_blocked():
    served = ServedProcess([sys.executable, "-c", PRINT_A_LOT], {})
    try:
        assert served.process.wait(timeout=20) == 0, "blocked writing to a full pipe"
        served.wait_for("done\n", timeout=5)
        assert "log line 19999" in served.output
    finally:
        served.stop()


def test_echo_copies_each_line_with_its_prefix(capsys):
    served = ServedProcess([sys.executable, "-c", "print('one'); print('two')"], {}, echo="[w1] ")
    try:
        served.wait_for("two\n", timeout=10)
        served.process.wait(timeout=10)
    finally:
        served.stop()
    assert capsys.readouterr().out == "[w1] one\n[w1] two\n"


def test_waiting_for_what_never_comes_fails_with_the_output():
    served = ServedProcess([sys.executable, "-c", "print('hello')"], {})
    try:
        with pytest.raises(AssertionError, match="hello"):
            served.wait_for("goodbye", timeout=5)
    finally:
        served.stop()


def test_echo_prefixes_a_line_once_even_when_it_arrives_in_pieces(capsys):
    script = "import sys, time\nsys.stdout.write('hal'); sys.stdout.flush(); time.sleep(0.3); print('f'); print('next')"
    served = ServedProcess([sys.executable, "-c", script], {}, echo="[w1] ")
    try:
        served.wait_for("next\n", timeout=10)
        served.process.wait(timeout=10)
    finally:
        served.stop()
    assert capsys.readouterr().out == "[w1] half\n[w1] next\n"
