"""Reading arithmetic questions and planning them as tool calls, for the offline model.

`parse_question` turns "what is (2 + 3) * (4 + 5)?" or "10 plus 10" into a
`Question`: a display form of the expression and a *plan tree* whose inner nodes
are tool calls (`add`, `subtract`, `multiply`, `exponentiate`). Operators keep
their usual precedence (powers, then unary minus, then * and /, then + and -).

The plan tree is shaped for parallel steps: chains like 1 + 2 + 3 + 4 are
combined pairwise, shallowest operands first, so independent operations can run
in the same step; division becomes a multiplication by `exponentiate(x, -1)`.
Each step of the agent runs all `ready_operations` (those whose operands are
known numbers) at once; `substitute_results` puts their results back.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass

from agent.tools import MAX_RESULT_DIGITS, Number, checked, display_number, estimated_power_digits

MAX_NESTING = 24
MAX_OPERANDS = 64


class NotArithmetic(ValueError):
    """The text holds no arithmetic the offline model can do; the message says why."""


# -- plan tree -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Num:
    value: Number


@dataclass(frozen=True, slots=True)
class Op:
    """One tool call: `tool(a, b)`; argument names follow the tool's schema."""

    tool: str
    left: Node
    right: Node

    @property
    def depth(self) -> int:
        return 1 + max(depth(self.left), depth(self.right))


Node = Num | Op

ARGUMENT_NAMES = {
    "add": ("a", "b"),
    "subtract": ("a", "b"),
    "multiply": ("a", "b"),
    "exponentiate": ("base", "exponent"),
}


def depth(node: Node) -> int:
    return 0 if isinstance(node, Num) else node.depth


def ready_operations(node: Node) -> list[Op]:
    """Operations whose operands are both numbers, left to right."""
    if isinstance(node, Num):
        return []
    if isinstance(node.left, Num) and isinstance(node.right, Num):
        return [node]
    return ready_operations(node.left) + ready_operations(node.right)


def substitute_results(node: Node, results: Iterator[Number]) -> Node:
    """Replace each ready operation, in `ready_operations` order, by its result."""
    if isinstance(node, Num):
        return node
    if isinstance(node.left, Num) and isinstance(node.right, Num):
        return Num(next(results))
    return Op(node.tool, substitute_results(node.left, results), substitute_results(node.right, results))


def tool_arguments(op: Op) -> dict[str, Number]:
    first, second = ARGUMENT_NAMES[op.tool]
    assert isinstance(op.left, Num) and isinstance(op.right, Num)
    return {first: op.left.value, second: op.right.value}


def evaluate(node: Node) -> Number:
    """The plan's exact value, computed as the tools compute it (a result passes through its
    tool's text form, as it does in the conversation); `ValueError` where a tool would refuse."""
    if isinstance(node, Num):
        return node.value
    left, right = evaluate(node.left), evaluate(node.right)
    if node.tool == "exponentiate":
        if estimated_power_digits(left, right) > MAX_RESULT_DIGITS:
            raise ValueError("the power is too large")
        if left == 0 and right < 0:
            raise ValueError("division by zero")
    operations = {
        "add": lambda: left + right,
        "subtract": lambda: left - right,
        "multiply": lambda: left * right,
        "exponentiate": lambda: left**right,
    }
    try:
        text = checked(operations[node.tool]())
    except OverflowError:
        raise ValueError("the result is too large to represent") from None
    return float(text) if any(c in text for c in ".e") else int(text)


# -- syntax tree (what the user wrote) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: Number
    text: str


@dataclass(frozen=True, slots=True)
class Group:
    inner: Syntax


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" or "√"
    operand: Syntax


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # "+", "-", "*", "/", "^"
    left: Syntax
    right: Syntax


Syntax = Literal | Group | Unary | Binary


def render(node: Syntax) -> str:
    if isinstance(node, Literal):
        return node.text
    if isinstance(node, Group):
        return f"({render(node.inner)})"
    if isinstance(node, Unary):
        return f"{node.op}{render(node.operand)}"
    return f"{render(node.left)} {node.op} {render(node.right)}"


def plan(node: Syntax) -> Node:
    """Lower what the user wrote to tool calls, combining chains pairwise."""
    if isinstance(node, Literal):
        return Num(node.value)
    if isinstance(node, Group):
        return plan(node.inner)
    if isinstance(node, Unary):
        operand = plan(node.operand)
        if node.op == "√":
            return Op("exponentiate", operand, Num(0.5))
        if isinstance(operand, Num):
            return Num(-operand.value)
        return Op("subtract", Num(0), operand)
    if node.op == "^":
        return Op("exponentiate", plan(node.left), plan(node.right))
    if node.op in "+-":
        positive, negative = _chain(node, "+", "-")
        combined = _combine("add", positive)
        return Op("subtract", combined, _combine("add", negative)) if negative else combined
    numerators, denominators = _chain(node, "*", "/")
    combined = _combine("multiply", numerators)
    if not denominators:
        return combined
    return Op("multiply", combined, Op("exponentiate", _combine("multiply", denominators), Num(-1)))


def _chain(node: Syntax, keep: str, invert: str) -> tuple[list[Node], list[Node]]:
    """Flatten a + b - c (or a * b / c) into planned operands kept and inverted."""
    if isinstance(node, Binary) and node.op in (keep, invert):
        kept, inverted = _chain(node.left, keep, invert)
        right = plan(node.right)
        (kept if node.op == keep else inverted).append(right)
        return kept, inverted
    return [plan(node)], []


def _combine(tool: str, operands: list[Node]) -> Node:
    """Combine operands pairwise, shallowest first: the fewest sequential steps."""
    heap = [(depth(node), order, node) for order, node in enumerate(operands)]
    heapq.heapify(heap)
    order = len(heap)
    while len(heap) > 1:
        _, first_order, first = heapq.heappop(heap)
        _, second_order, second = heapq.heappop(heap)
        left, right = (first, second) if first_order < second_order else (second, first)
        combined = Op(tool, left, right)
        heapq.heappush(heap, (combined.depth, order, combined))
        order += 1
    return heap[0][2]


# -- reading text ---------------------------------------------------------------------

_SMALL = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_VALUES = {word: value for value, word in enumerate(_SMALL)} | {
    word: 10 * (index + 2) for index, word in enumerate(_TENS)
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORD = "|".join(sorted([*_WORD_VALUES, *_SCALES], key=len, reverse=True))
_NUMBER_WORD_RUN = re.compile(rf"\b(?:{_NUMBER_WORD})(?:[\s-]+(?:{_NUMBER_WORD}))*\b")

_OPERAND = r"(-?\d[\d,]*(?:\.\d+)?|that|it|the result|the answer)"
_TEMPLATES = [
    (re.compile(rf"\b(?:add|sum of)\s+{_OPERAND}\s+(?:and|to|with)\s+{_OPERAND}"), r"\1 + \2"),
    (re.compile(rf"\bsubtract\s+{_OPERAND}\s+from\s+{_OPERAND}"), r"\2 - \1"),
    (re.compile(rf"\bdifference between\s+{_OPERAND}\s+and\s+{_OPERAND}"), r"\1 - \2"),
    (re.compile(rf"\b(?:multiply|product of)\s+{_OPERAND}\s+(?:and|by|with)\s+{_OPERAND}"), r"\1 * \2"),
    (re.compile(rf"\bdivide\s+{_OPERAND}\s+by\s+{_OPERAND}"), r"\1 / \2"),
]

_PHRASES = {
    "raised to the power of": "^",
    "to the power of": "^",
    "raised to": "^",
    "multiplied by": "*",
    "times": "*",
    "divided by": "/",
    "over": "/",
    "plus": "+",
    "minus": "-",
    "negative": "-",
    "square root of": "√",
    "sqrt": "√",
    "squared": "²",
    "cubed": "³",
    "the result": "ref",
    "the answer": "ref",
    "that": "ref",
    "it": "ref",
    "previous": "ref",
}
_UNSUPPORTED = [
    "logarithm",
    "log",
    "ln",
    "sine",
    "sin",
    "cosine",
    "cos",
    "tangent",
    "tan",
    "factorial",
    "modulo",
    "mod",
    "percent",
]
_WORDS = sorted([*_PHRASES, *_UNSUPPORTED], key=len, reverse=True)
_TOKEN = re.compile(
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:e[+-]?\d+)?|\.\d+)"
    rf"|\b(?P<word>{'|'.join(re.escape(w) for w in _WORDS)})\b"
    r"|(?P<symbol>\*\*|[-+*/^()√²³%]|(?<=[\d)])\s*x(?=\s*[\d(]))"
)
_UNICODE_OPERATORS = str.maketrans({"×": "*", "÷": "/", "−": "-", "–": "-"})
_SYMBOL_ALIASES = {"**": "^", "x": "*"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "number", "op", "(", ")", "ref", "unsupported"
    text: str
    value: Number = 0


def words_to_number(words: str) -> int:
    """'two hundred fifty-one' -> 251."""
    total, current = 0, 0
    for word in re.split(r"[\s-]+", words):
        if word in _WORD_VALUES:
            current += _WORD_VALUES[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _SCALES[word]
            current = 0
    return total + current


def _number(text: str) -> Number:
    cleaned = text.replace(",", "")
    return float(cleaned) if any(c in cleaned for c in ".e") else int(cleaned)


def tokenize(text: str) -> list[Token]:
    text = text.lower().translate(_UNICODE_OPERATORS)
    text = re.sub(r"\bhundred\s+and\b", "hundred", text)
    text = _NUMBER_WORD_RUN.sub(lambda m: str(words_to_number(m.group())), text)
    for pattern, replacement in _TEMPLATES:
        text = pattern.sub(replacement, text)
    tokens: list[Token] = []
    for match in _TOKEN.finditer(text):
        tokens.extend(_tokens_of(match))
    return [t for i, t in enumerate(tokens) if t.kind != "ref" or _next_to_operator(tokens, i)]


def _next_to_operator(tokens: list[Token], index: int) -> bool:
    """'that' is a reference only in 'that * 4' or '4 + that', not in 'is that 2 + 2?'."""
    neighbours = tokens[max(index - 1, 0) : index] + tokens[index + 1 : index + 2]
    return any(t.kind == "op" and t.text != "√" for t in neighbours)


def _tokens_of(match: re.Match[str]) -> list[Token]:
    if match["number"]:
        return [Token("number", match["number"].replace(",", ""), _number(match["number"]))]
    if match["word"]:
        word = match["word"]
        if word in _UNSUPPORTED:
            return [Token("unsupported", word)]
        symbol = _PHRASES[word]
    else:
        symbol = match["symbol"].strip()
        symbol = _SYMBOL_ALIASES.get(symbol, symbol)
    if symbol == "ref":
        return [Token("ref", word)]
    if symbol in "²³":
        return [Token("op", "^"), Token("number", "2" if symbol == "²" else "3", 2 if symbol == "²" else 3)]
    if symbol == "%":
        return [Token("unsupported", symbol)]
    if symbol in "()":
        return [Token(symbol, symbol)]
    return [Token("op", symbol)]


# -- parsing --------------------------------------------------------------------------


class _Parser:
    """Recursive descent over tokens: expr > term > unary > power > primary."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.position = 0
        self.nesting = 0

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def at_op(self, *ops: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text in ops

    def parse(self) -> Syntax:
        tree = self.expr()
        if self.peek() is not None:
            raise NotArithmetic(f"I could not read the expression near “{self.peek().text}”.")
        return tree

    def expr(self) -> Syntax:
        node = self.term()
        while self.at_op("+", "-"):
            node = Binary(self.take().text, node, self.term())
        return node

    def term(self) -> Syntax:
        node = self.unary()
        while self.at_op("*", "/") or (self.peek() is not None and self.peek().kind == "("):
            op = self.take().text if self.at_op("*", "/") else "*"
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Syntax:
        if self.at_op("-", "+", "√"):
            op = self.take().text
            with self.nested():
                operand = self.unary() if op != "√" else self.power()
            return operand if op == "+" else Unary(op, operand)
        return self.power()

    def power(self) -> Syntax:
        base = self.primary()
        if self.at_op("^"):
            self.take()
            with self.nested():
                return Binary("^", base, self.unary())
        return base

    def primary(self) -> Syntax:
        token = self.peek()
        if token is None:
            raise NotArithmetic("The expression ends too early.")
        if token.kind == "number":
            self.take()
            return Literal(token.value, token.text)
        if token.kind == "(":
            self.take()
            with self.nested():
                inner = self.expr()
            if self.peek() is None or self.peek().kind != ")":
                raise NotArithmetic("A parenthesis is not closed.")
            self.take()
            return Group(inner)
        raise NotArithmetic(f"I could not read the expression near “{token.text}”.")

    def nested(self) -> _Nesting:
        return _Nesting(self)


class _Nesting:
    def __init__(self, parser: _Parser) -> None:
        self.parser = parser

    def __enter__(self) -> None:
        self.parser.nesting += 1
        if self.parser.nesting > MAX_NESTING:
            raise NotArithmetic(f"The expression is nested more than {MAX_NESTING} levels deep.")

    def __exit__(self, *exc: object) -> None:
        self.parser.nesting -= 1


@dataclass(frozen=True, slots=True)
class Question:
    expression: str
    tree: Node


def parse_question(text: str, previous_result: Number | None = None) -> Question:
    """Read an arithmetic question; raise `NotArithmetic` if there is none.

    `previous_result` is what "that", "it" or a leading operator ("times 4")
    refers to: the last number of the previous answer.
    """
    tokens = tokenize(text)
    unsupported = [t.text for t in tokens if t.kind == "unsupported"]
    if unsupported:
        raise NotArithmetic(f"The offline model has no tool for “{unsupported[0]}”.")
    if not any(t.kind == "op" for t in tokens):
        raise NotArithmetic("There is no arithmetic operation in the message.")
    if tokens[0].kind == "op" and tokens[0].text in "+*/^":
        tokens.insert(0, Token("ref", "that"))
    if any(t.kind == "ref" for t in tokens):
        if previous_result is None:
            raise NotArithmetic("There is no earlier result to refer to.")
        shown = display_number(previous_result)
        tokens = [Token("number", shown, previous_result) if t.kind == "ref" else t for t in tokens]
    if sum(t.kind == "number" for t in tokens) > MAX_OPERANDS:
        raise NotArithmetic(f"The expression has more than {MAX_OPERANDS} numbers.")
    syntax = _Parser(tokens).parse()
    return Question(render(syntax), plan(syntax))
