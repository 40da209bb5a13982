"""Planning: a parsed expression becomes steps of tool calls, independent calls in the same step.

The walk accepts only numbers and the operations the four tools can do (`+ - * / **`,
unary minus, and `~` for a square root); any other node is refused. Chains like
1 + 2 + 3 + 4 are combined pairwise, shallowest operands first, so that
independent calls run in parallel; division is a multiplication by
`exponentiate(x, -1)`. A call's depth is the step it runs in.
"""

from __future__ import annotations

import ast
import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain

from agent.offline.reading import Expression, NotArithmetic
from agent.tools import TOOLS_BY_NAME, Number, checked, power


@dataclass(frozen=True, eq=False, slots=True)
class Call:
    """One tool call, `tool(left, right)`; an operand that is a `Call` is that call's result."""

    tool: str
    left: Operand
    right: Operand
    depth: int


Operand = Number | Call


@dataclass(frozen=True, slots=True)
class Plan:
    """`steps[k]` are the calls that can run once the steps before have; `result` is the answer."""

    expression: str
    steps: list[list[Call]]
    result: Operand


_COMPUTE: dict[str, Callable[[Number, Number], str]] = {
    "add": lambda a, b: checked(a + b),
    "subtract": lambda a, b: checked(a - b),
    "multiply": lambda a, b: checked(a * b),
    "exponentiate": power,
}


def plan(expression: Expression) -> Plan:
    result = _lower(expression.tree)
    steps: list[list[Call]] = [[] for _ in range(_depth(result))]
    for call in _calls(result):
        steps[call.depth - 1].append(call)
    return Plan(expression.text, steps, result)


def parse_number(text: str) -> Number:
    """A number as the tools write it (`format_number`), or as an answer shows it."""
    return float(text) if any(c in text for c in ".e") else int(text)


def arguments(call: Call, results: dict[Call, Number]) -> dict[str, Number]:
    """The call's arguments, named as its tool's schema names them, with earlier results filled in."""
    first, second = TOOLS_BY_NAME[call.tool].args
    return {first: value(call.left, results), second: value(call.right, results)}


def value(operand: Operand, results: dict[Call, Number]) -> Number:
    return results[operand] if isinstance(operand, Call) else operand


def evaluate(planned: Plan) -> Number:
    """The plan's exact value, computed as the tools compute it; `ValueError` where a tool refuses."""
    results: dict[Call, Number] = {}
    for call in chain.from_iterable(planned.steps):
        results[call] = parse_number(_COMPUTE[call.tool](**arguments(call, results)))
    return value(planned.result, results)


def _lower(node: ast.expr) -> Operand:
    match node:
        case ast.Constant(value=int() as number) if not isinstance(number, bool):
            return number
        case ast.Constant(value=float() as number) if math.isfinite(number):
            return number
        case ast.Constant(value=float()):
            raise NotArithmetic("A number in the question is too large for the tools.")
        case ast.UnaryOp(op=ast.UAdd(), operand=operand):
            return _lower(operand)
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            lowered = _lower(operand)
            return _call("subtract", 0, lowered) if isinstance(lowered, Call) else -lowered
        case ast.UnaryOp(op=ast.Invert(), operand=operand):
            return _call("exponentiate", _lower(operand), 0.5)
        case ast.BinOp(op=ast.Pow(), left=left, right=right):
            return _call("exponentiate", _lower(left), _lower(right))
        case ast.BinOp(op=ast.Add() | ast.Sub()):
            added, subtracted = _chain(node, ast.Add, ast.Sub)
            total = _combine("add", added)
            return _call("subtract", total, _combine("add", subtracted)) if subtracted else total
        case ast.BinOp(op=ast.Mult() | ast.Div()):
            multiplied, divided = _chain(node, ast.Mult, ast.Div)
            product = _combine("multiply", multiplied)
            if not divided:
                return product
            return _call("multiply", product, _call("exponentiate", _combine("multiply", divided), -1))
    raise NotArithmetic(f"The offline model cannot compute “{ast.unparse(node)}”.")


def _chain(
    node: ast.expr, keep: type[ast.operator], invert: type[ast.operator]
) -> tuple[list[Operand], list[Operand]]:
    """Flatten a + b - c (or a * b / c) into the operands kept and those inverted."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, keep | invert):
        kept, inverted = _chain(node.left, keep, invert)
        (kept if isinstance(node.op, keep) else inverted).append(_lower(node.right))
        return kept, inverted
    return [_lower(node)], []


def _combine(tool: str, operands: list[Operand]) -> Operand:
    """Combine operands pairwise, shallowest first: the fewest sequential steps."""
    heap = [(_depth(operand), order, operand) for order, operand in enumerate(operands)]
    heapq.heapify(heap)
    order = len(heap)
    while len(heap) > 1:
        _, first_order, first = heapq.heappop(heap)
        _, second_order, second = heapq.heappop(heap)
        left, right = (first, second) if first_order < second_order else (second, first)
        combined = _call(tool, left, right)
        heapq.heappush(heap, (combined.depth, order, combined))
        order += 1
    return heap[0][2]


def _call(tool: str, left: Operand, right: Operand) -> Call:
    return Call(tool, left, right, 1 + max(_depth(left), _depth(right)))


def _depth(operand: Operand) -> int:
    return operand.depth if isinstance(operand, Call) else 0


def _calls(operand: Operand) -> Iterable[Call]:
    """Every call of the plan, each after the calls it needs, left to right."""
    if isinstance(operand, Call):
        yield from _calls(operand.left)
        yield from _calls(operand.right)
        yield operand
