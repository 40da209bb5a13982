"""Reading a question: its text becomes a Python expression that `ast` parses (and nothing runs).

Number words become digits ("seven point five" → 7.5), phrases become operators
("to the power of" → `**`, "times" → `*`, "square root of" → `~`, which has the
precedence a root needs), and "that" or "the result" stays the name `that` for
the previous answer. A comma or "then" before an operation applies it to
everything before ("2 + 3, times 4" is `(2 + 3) * 4`, as people mean it).
Everything else in the message is left out, so "What's 2+2? Thanks!" reads as `2 + 2`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from agent.tools import Number, display_number

MAX_NESTING = 24
MAX_OPERANDS = 64
MAX_OPERATORS = 2 * MAX_OPERANDS
"""Bounds the depth of the parsed tree (unary signs add depth without adding numbers)."""

REFERENCE = "that"


class NotArithmetic(ValueError):
    """The text holds no arithmetic the offline model can do; the message says why."""


@dataclass(frozen=True, slots=True)
class Expression:
    """What the question asks, for people (`text`) and as a parsed tree of numbers and operators."""

    text: str
    tree: ast.expr


_ONES = (
    "zero one two three four five six seven eight nine ten "
    "eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
)
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
_WORD_VALUES = {word: value for value, word in enumerate(_ONES.split())} | {
    word: 10 * (index + 2) for index, word in enumerate(_TENS.split())
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_DIGIT_WORD = "|".join(word for word, value in _WORD_VALUES.items() if value < 10)
_NUMBER_WORD = "|".join(sorted([*_WORD_VALUES, *_SCALES], key=len, reverse=True))
_NUMBER_WORDS = re.compile(
    rf"\b(?:{_NUMBER_WORD})(?:[\s-]+(?:{_NUMBER_WORD}))*(?:\s+point(?:\s+(?:{_DIGIT_WORD}))+)?\b"
)

_OPERAND = r"(-?\d[\d,]*(?:\.\d+)?|that|it|the result|the answer)"
_TEMPLATES = [
    (re.compile(rf"\b(?:add|sum of)\s+{_OPERAND}\s+(?:and|to|with)\s+{_OPERAND}"), r"\1 + \2"),
    (re.compile(rf"\bsubtract\s+{_OPERAND}\s+from\s+{_OPERAND}"), r"\2 - \1"),
    (re.compile(rf"\bdifference between\s+{_OPERAND}\s+and\s+{_OPERAND}"), r"\1 - \2"),
    (re.compile(rf"\b(?:multiply|product of)\s+{_OPERAND}\s+(?:and|by|with)\s+{_OPERAND}"), r"\1 * \2"),
    (re.compile(rf"\bdivide\s+{_OPERAND}\s+by\s+{_OPERAND}"), r"\1 / \2"),
]
_PHRASES = {
    **dict.fromkeys(["raised to the power of", "to the power of", "raised to"], "**"),
    **dict.fromkeys(["multiplied by", "multiply by", "times"], "*"),
    **dict.fromkeys(["divided by", "divide by", "over"], "/"),
    **dict.fromkeys(["minus", "negative", "subtract"], "-"),
    **dict.fromkeys(["square root of", "sqrt"], "~"),
    **dict.fromkeys(["the result", "the answer", "it", "previous"], REFERENCE),
    "plus": "+",
    "squared": "**2",
    "cubed": "**3",
}
_PHRASE = re.compile(rf"\b(?:{'|'.join(sorted(_PHRASES, key=len, reverse=True))})\b")
_SYMBOLS = str.maketrans(
    {"×": "*", "÷": "/", "−": "-", "–": "-", "^": "**", "√": "~", "²": "**2", "³": "**3"}
)
_THEN = re.compile(r"\s*(?:,\s*(?:and\s+)?(?:then\s+)?|\bthen\s+)(?=(?:\*\*|[-+*/])\s)")
"""A comma or "then" right before an operation that the phrases above wrote (spaced)."""
_SAYS_MINUS_FIRST = re.compile(r"^\W*(?:(?:and|now|then|ok|okay)\W+)*(?:minus|subtract)\b", re.IGNORECASE)
"""A follow-up that starts with the word ("minus 3") subtracts from the previous answer; "-3" is a number."""
_HAS_OPERATION = re.compile(r"[-+*/~]")
_TIMES_X = re.compile(r"(?<=[\d)])\s*x(?=\s*[\d(])")
_UNSUPPORTED = re.compile(
    r"\b(?:logarithm|log|ln|sine|sin|cosine|cos|tangent|tan|factorial|modulo|mod|percent)\b|%"
)
_TOKEN = re.compile(
    rf"\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?(?:e[+-]?\d+)?|\.\d+|\*\*|[-+*/~()]|\b{REFERENCE}\b"
)
_LEADING_ZEROS = re.compile(r"^0+(?=\d)")  # Python reads 007 as a mistake
_OPERATORS = {"+", "-", "*", "/", "**", "~"}


def read(text: str, previous: Number | None = None) -> Expression:
    """Read an arithmetic question; raise `NotArithmetic` if there is none.

    `previous` is what "that", "it" or a leading operator ("times 4", "minus 3") refers to.
    """
    tokens = _tokens(_symbolic(text))
    if not _OPERATORS.intersection(tokens):
        raise NotArithmetic("There is no arithmetic operation in the message.")
    if tokens[0] in {"+", "*", "/", "**"} or (previous is not None and _SAYS_MINUS_FIRST.match(text)):
        tokens.insert(0, REFERENCE)
    if REFERENCE in tokens and previous is None:
        raise NotArithmetic("There is no earlier result to refer to.")
    _check_size(tokens)
    source = " ".join(tokens)
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError:
        raise NotArithmetic(f"I could not read “{_for_people(source)}” as arithmetic.") from None
    shown = ast.parse(display_number(previous), mode="eval").body if previous is not None else None
    text = _for_people(ast.unparse(_AsWritten(source, shown).visit(tree)))
    tree = ast.parse(source, mode="eval").body
    return Expression(text, tree if previous is None else _Previous(previous).visit(tree))


def _symbolic(text: str) -> str:
    """The text with numbers as digits and operations as Python operators."""
    text = re.sub(r"\bhundred\s+and\b", "hundred", text.lower().translate(_SYMBOLS))
    text = _NUMBER_WORDS.sub(lambda match: _digits(match.group()), text)
    for pattern, replacement in _TEMPLATES:
        text = pattern.sub(replacement, text)
    if unsupported := _UNSUPPORTED.search(text):
        raise NotArithmetic(f"The offline model has no tool for “{unsupported.group()}”.")
    text = _PHRASE.sub(lambda match: f" {_PHRASES[match.group()]} ", text)
    return _then_applies_to_all_before(_TIMES_X.sub(" * ", text))


def _then_applies_to_all_before(text: str) -> str:
    """'2 + 3, times 4' → '(2 + 3) times 4'; a clause with no operation of its own is left as it is
    ('hello, times 4' still means the previous answer times 4)."""
    clauses = _THEN.split(text)
    grouped = clauses[0]
    for clause in clauses[1:]:
        grouped = f"({grouped}) {clause}" if _HAS_OPERATION.search(grouped) else f"{grouped} {clause}"
    return grouped


def _digits(words: str) -> str:
    """'two hundred fifty-one' → '251', 'seven point five' → '7.5'."""
    whole, _, fraction = re.sub(r"\s+point\s+", " point ", words).partition(" point ")
    total, current = 0, 0
    for word in re.split(r"[\s-]+", whole):
        if word in _WORD_VALUES:
            current += _WORD_VALUES[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _SCALES[word]
            current = 0
    decimals = "".join(str(_WORD_VALUES[word]) for word in fraction.split())
    return f"{total + current}.{decimals}" if decimals else str(total + current)


def _tokens(text: str) -> list[str]:
    """Numbers, operators, parentheses and references; "that" only where it is an operand."""
    tokens = [_LEADING_ZEROS.sub("", token.replace(",", "")) for token in _TOKEN.findall(text)]
    tokens = [t for i, t in enumerate(tokens) if t != REFERENCE or _next_to_operator(tokens, i)]
    implicit = [
        i for i in range(1, len(tokens)) if tokens[i] == "(" and tokens[i - 1] not in _OPERATORS | {"("}
    ]
    for index in reversed(implicit):  # 2(3 + 4) and (1 + 2)(3 + 4) multiply
        tokens.insert(index, "*")
    return tokens


def _next_to_operator(tokens: list[str], index: int) -> bool:
    """'that' is a reference only in 'that * 4' or '4 + that', not in 'is that 2 + 2?'."""
    neighbours = tokens[max(index - 1, 0) : index] + tokens[index + 1 : index + 2]
    return any(t in _OPERATORS - {"~"} for t in neighbours)


def _check_size(tokens: list[str]) -> None:
    """Refuse what would cost the parser or the planner too much, before parsing it."""
    if sum(t[0].isdigit() or t[0] == "." or t == REFERENCE for t in tokens) > MAX_OPERANDS:
        raise NotArithmetic(f"The expression has more than {MAX_OPERANDS} numbers.")
    if sum(t in _OPERATORS for t in tokens) > MAX_OPERATORS:
        raise NotArithmetic(f"The expression has more than {MAX_OPERATORS} operators.")
    depth = 0
    for token in tokens:
        depth += {"(": 1, ")": -1}.get(token, 0)
        if depth > MAX_NESTING:
            raise NotArithmetic(f"The expression is nested more than {MAX_NESTING} levels deep.")


def _for_people(source: str) -> str:
    return source.replace("**", "^").replace("~", "√")


class _AsWritten(ast.NodeTransformer):
    """For display: numbers as the question wrote them, `that` as the previous answer was shown."""

    def __init__(self, source: str, shown: ast.expr | None) -> None:
        self.source = source
        self.shown = shown

    def visit_Constant(self, node: ast.Constant) -> ast.Name:
        return ast.Name(self.source[node.col_offset : node.end_col_offset])  # one line

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.shown or node


class _Previous(ast.NodeTransformer):
    """Puts the previous answer's exact value where the question says `that`."""

    def __init__(self, value: Number) -> None:
        self.value = value

    def visit_Name(self, node: ast.Name) -> ast.Constant:
        return ast.Constant(self.value)
