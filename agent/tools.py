"""The agent's tools: four arithmetic operations and `final_answer`.

To add a tool, write one `@async_tool(ArgsSchema)` function (LangChain's
`@tool(args_schema=...)` for an async function; a docstring the model reads) and
append it to `TOOLS`. Tools are `async` and must finish in milliseconds: a tool
that could be made to run for long (a huge power) checks its cost *before*
computing and raises `ValueError` with a message for the model. A tool that acts
(writes, sends, deletes) gets `@requires_approval` above its `@async_tool`: a
person then approves or denies each of its calls before it runs.
"""

# No `from __future__ import annotations`: LangChain reads a tool function's type hints on every
# call (agent/langchain_seams.py), and objects need no evaluation.

import math

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from agent.langchain_seams import async_tool

Number = int | float

APPROVAL = "approval"
"""The key of a tool's approval policy in `tool.metadata`: `"always"` or `"never"` (absent: never).
MCP tools get theirs from the MCP config and the server's annotations; Python tools from
`requires_approval`."""

MAX_RESULT_DIGITS = 1000
"""Largest integer result, in decimal digits, that a tool will produce."""


class TwoNumbers(BaseModel):
    a: Number = Field(description="The first operand.")
    b: Number = Field(description="The second operand.")


class Power(BaseModel):
    base: Number = Field(description="The number to raise.")
    exponent: Number = Field(description="The power to raise it to.")


class FinalAnswer(BaseModel):
    answer: str = Field(description="The complete answer for the user, in Markdown.")
    tools_used: list[str] = Field(
        default_factory=list, description="Names of the tools you called for this answer."
    )


def format_number(value: Number) -> str:
    """Exact: integers in full, floats in the shortest form that reads back as the same float.

    Tool results are fed to the next step, so they must not be rounded: a rounded
    1/3 multiplied by 24 gives 7.99999999999999. Rounding is for display only
    (`display_number`).
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def display_number(value: Number) -> str:
    """For people: floats rounded to 12 significant digits (0.1 + 0.2 -> 0.3)."""
    if isinstance(value, float):
        return format_number(float(f"{value:.12g}"))
    return format_number(value)


def checked(value: Number | complex) -> str:
    """Refuse results that are not finite real numbers or are too long to be useful."""
    if isinstance(value, complex):
        raise ValueError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("the result is too large to represent")
    if isinstance(value, int) and value.bit_length() * math.log10(2) > MAX_RESULT_DIGITS:
        raise ValueError(f"the result has more than {MAX_RESULT_DIGITS:,} digits")
    return format_number(value)


def estimated_power_digits(base: Number, exponent: Number) -> float:
    """Decimal digits of base ** exponent, estimated without computing it."""
    if base == 0 or exponent <= 0:
        return 1.0
    try:
        return exponent * math.log10(abs(base))
    except OverflowError:
        return math.inf


def requires_approval(tool: BaseTool) -> BaseTool:
    """Mark a tool whose every call a person approves or denies before it runs:

    @requires_approval
    @async_tool(NewFile)
    async def write_file(path: str, text: str) -> str: ...
    """
    tool.metadata = {**(tool.metadata or {}), APPROVAL: "always"}
    return tool


@async_tool(TwoNumbers)
async def add(a: Number, b: Number) -> str:
    """Add two numbers: returns a + b."""
    return checked(a + b)


@async_tool(TwoNumbers)
async def subtract(a: Number, b: Number) -> str:
    """Subtract the second number from the first: returns a - b."""
    return checked(a - b)


@async_tool(TwoNumbers)
async def multiply(a: Number, b: Number) -> str:
    """Multiply two numbers: returns a * b."""
    return checked(a * b)


def power(base: Number, exponent: Number) -> str:
    """`exponentiate`'s result, checked for cost before it is computed (the offline model
    computes a question's exact value with it too)."""
    digits = estimated_power_digits(base, exponent)
    if digits > MAX_RESULT_DIGITS:
        raise ValueError(
            f"{format_number(base)} ** {format_number(exponent)} would have about "
            f"{digits:,.0f} digits; the limit is {MAX_RESULT_DIGITS:,}"
        )
    if base == 0 and exponent < 0:
        raise ValueError("0 cannot be raised to a negative power (that is a division by zero)")
    try:
        return checked(base**exponent)
    except OverflowError:
        raise ValueError("the result is too large to represent") from None


@async_tool(Power)
async def exponentiate(base: Number, exponent: Number) -> str:
    """Raise a number to a power: returns base ** exponent. A negative exponent divides
    (x ** -1 is 1 / x), a fractional one takes a root (x ** 0.5 is the square root of x)."""
    return power(base, exponent)


@async_tool(FinalAnswer)
async def final_answer(answer: str, tools_used: list[str]) -> str:
    """Give the user the final answer. Call it once, when you know the answer; the
    `answer` text is shown to the user as it is, so write it for them."""
    return answer


TOOLS: list[BaseTool] = [add, subtract, multiply, exponentiate, final_answer]
TOOLS_BY_NAME: dict[str, BaseTool] = {t.name: t for t in TOOLS}
FINAL_ANSWER = final_answer.name
