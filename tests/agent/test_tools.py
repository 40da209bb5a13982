import time

import pytest
from pydantic import ValidationError

from agent.tools import (
    TOOLS,
    TOOLS_BY_NAME,
    add,
    display_number,
    exponentiate,
    final_answer,
    format_number,
    multiply,
    subtract,
)


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        (add, {"a": 2, "b": 3}, "5"),
        (add, {"a": 0.1, "b": 0.2}, "0.30000000000000004"),
        (add, {"a": -7, "b": 2.5}, "-4.5"),
        (subtract, {"a": 10, "b": 15}, "-5"),
        (multiply, {"a": 2**40, "b": 2**40}, str(2**80)),
        (multiply, {"a": 1.5, "b": 4}, "6"),
        (exponentiate, {"base": 2, "exponent": 10}, "1024"),
        (exponentiate, {"base": 4, "exponent": -1}, "0.25"),
        (exponentiate, {"base": 16, "exponent": 0.5}, "4"),
        (exponentiate, {"base": 2, "exponent": 100}, str(2**100)),
        (exponentiate, {"base": 1, "exponent": 10**12}, "1"),
    ],
)
async def test_arithmetic_tools_compute_exact_results(tool, args, expected):
    assert await tool.ainvoke(args) == expected


async def test_exponentiate_refuses_a_huge_power_within_milliseconds():
    started = time.perf_counter()
    with pytest.raises(ValueError, match="would have about 1,000,000,000 digits"):
        await exponentiate.ainvoke({"base": 10, "exponent": 10**9})
    with pytest.raises(ValueError, match="digits"):
        await exponentiate.ainvoke({"base": 10, "exponent": 10**10**3})
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"base": 0, "exponent": -1}, "division by zero"),
        ({"base": -8, "exponent": 0.5}, "not a real number"),
        ({"base": 10.0, "exponent": 400}, "too large"),
        ({"base": 2.5, "exponent": 10**6}, "digits"),
    ],
)
async def test_exponentiate_explains_impossible_powers(args, message):
    with pytest.raises(ValueError, match=message):
        await exponentiate.ainvoke(args)


async def test_results_longer_than_the_digit_limit_are_refused():
    with pytest.raises(ValueError, match="more than 1,000 digits"):
        await multiply.ainvoke({"a": 10**600, "b": 10**600})


async def test_float_overflow_is_refused():
    with pytest.raises(ValueError, match="too large"):
        await multiply.ainvoke({"a": 1e308, "b": 10.0})


async def test_bad_arguments_are_rejected_by_the_schema():
    with pytest.raises(ValidationError):
        await add.ainvoke({"a": "two", "b": 3})
    with pytest.raises(ValidationError):
        await add.ainvoke({"a": 2})


async def test_final_answer_returns_the_answer_and_tolerates_a_missing_tool_list():
    assert await final_answer.ainvoke({"answer": "It is 4.", "tools_used": ["add"]}) == "It is 4."
    assert await final_answer.ainvoke({"answer": "It is 4."}) == "It is 4."


def test_every_tool_has_a_description_and_a_typed_schema():
    assert [t.name for t in TOOLS] == ["add", "subtract", "multiply", "exponentiate", "final_answer"]
    for tool in TOOLS:
        assert tool.description
        schema = tool.tool_call_schema.model_json_schema()
        assert schema["properties"], tool.name
        assert all("description" in p for p in schema["properties"].values()), tool.name
    assert TOOLS_BY_NAME["add"] is add


@pytest.mark.parametrize(
    ("value", "exact", "shown"),
    [
        (3, "3", "3"),
        (3.0, "3", "3"),
        (0.1 + 0.2, "0.30000000000000004", "0.3"),
        (1 / 3, "0.3333333333333333", "0.333333333333"),
        (1e20, "1e+20", "1e+20"),
        (-2.5, "-2.5", "-2.5"),
    ],
)
def test_tool_results_are_exact_and_answers_are_rounded_for_people(value, exact, shown):
    assert format_number(value) == exact
    assert float(format_number(value)) == value
    assert display_number(value) == shown
