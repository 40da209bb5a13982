"""The offline model's reading and planning, without a conversation: text → expression → steps."""

import ast

import pytest

from agent.offline.planning import evaluate, parse_number, plan
from agent.offline.reading import Expression, NotArithmetic, read


@pytest.mark.parametrize(
    ("text", "previous", "shown"),
    [
        ("What's 2+2? Thanks!", None, "2 + 2"),
        ("1e3 + 1", None, "1e3 + 1"),
        ("1,000 x 3", None, "1000 * 3"),
        ("sqrt(16 + 9)", None, "√(16 + 9)"),
        ("2 to the power of 10", None, "2 ^ 10"),
        ("times 4", -3, "-3 * 4"),
        ("that squared", -3, "(-3) ^ 2"),
        ("times 3", 1 / 3, "0.333333333333 * 3"),
        ("what is 2 + 3, times 4", None, "(2 + 3) * 4"),
        ("2 + 3 then divided by 5, minus 1", None, "(2 + 3) / 5 - 1"),
        ("add 2 and 3, then multiply by 4", None, "(2 + 3) * 4"),
        ("what is 2 + 3 times 4", None, "2 + 3 * 4"),
        ("1,000, plus 3", None, "1000 + 3"),
        ("thanks, times 4", 5, "5 * 4"),
        ("minus 3", 20, "20 - 3"),
        ("and then minus 3 times 2", 20, "20 - 3 * 2"),
        ("subtract 3", 20, "20 - 3"),
        ("-3 + 1", 20, "-3 + 1"),
        ("minus 3", None, "-3"),
    ],
)
def test_the_expression_is_shown_as_written_with_the_previous_answer_as_it_was_shown(text, previous, shown):
    assert read(text, previous).text == shown


def test_a_comma_before_an_operation_applies_it_to_everything_before():
    assert evaluate(plan(read("what is 2 + 3, times 4"))) == 20
    assert evaluate(plan(read("what is 2 + 3 times 4"))) == 14


def test_the_previous_answer_is_computed_with_exactly():
    assert evaluate(plan(read("times 3", 1 / 3))) == 1


@pytest.mark.parametrize(
    "source", ["f(2)", "2 % 3", "2 // 3", "'a' + 'b'", "True + 1", "2 if 1 else 3", "x + 1"]
)
def test_the_planner_refuses_anything_but_numbers_and_the_four_tools_operations(source):
    with pytest.raises(NotArithmetic):
        plan(Expression(source, ast.parse(source, mode="eval").body))


def test_a_question_is_evaluated_as_the_tools_compute_it():
    assert evaluate(plan(read("2 ^ 3 ^ 2"))) == 512
    with pytest.raises(ValueError, match="the limit is 1,000"):
        evaluate(plan(read("2 ^ 5000")))


@pytest.mark.parametrize(("text", "number"), [("3", 3), ("-2.5", -2.5), ("1e+20", 1e20), ("0.1", 0.1)])
def test_one_parser_reads_numbers_as_the_tools_write_them(text, number):
    assert parse_number(text) == number
    assert type(parse_number(text)) is type(number)
