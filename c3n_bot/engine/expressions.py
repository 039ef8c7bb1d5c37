"""A small safe expression language for flow scores and alert conditions (never Python eval)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple, NoReturn

from c3n_bot.engine import expression_functions as fx
from c3n_bot.engine.expression_functions import FUNCTION_NAMES, Evaluator, Value

__all__ = [
    "FUNCTION_NAMES",
    "KEYWORDS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Expression",
    "ExpressionError",
    "Value",
    "compile_expression",
]

# Grammar, lowest precedence first (an expression is at most 1000 characters; parentheses,
# calls, `not` and unary `-` nest at most 50 deep)::
#
#     expr       := or
#     or         := and ("or" and)*
#     and        := not ("and" not)*
#     not        := "not" not | comparison
#     comparison := additive (("==" | "!=" | "<" | "<=" | ">" | ">=") additive)?   # no chains
#     additive   := term (("+" | "-") term)*                                       # left assoc
#     term       := unary (("*" | "/") unary)*                                     # left assoc
#     unary      := "-" unary | primary
#     primary    := NUMBER | STRING | "true" | "false" | "null" | NAME
#                 | FUNCTION "(" expr ("," expr)* ")" | "(" expr ")"
#     NUMBER     := [0-9]+ ("." [0-9]+)?          STRING := '...' | "..." (no escapes)
#     NAME       := [A-Za-z_][A-Za-z0-9_]* ("." [A-Za-z_][A-Za-z0-9_]*)*
#
# Null: a name absent from the environment is null; arithmetic with null (or a boolean, or a
# string) is null; division by zero is null; `<`, `<=`, `>`, `>=` with null are false;
# `==`/`!=` treat null as a value (`x == null` tests absence, so `q9 != 0` is TRUE when q9 is
# missing: write `q9 > 0`); `and`, `or`, `not` and `if` count only `true` as true.
# Rounding: halves round toward +infinity on the decimal value as written (round(2.5) = 3,
# round(-2.5) = -2, round(2.675, 2) = 2.68); `prorate` uses the same rule.

MAX_LENGTH = 1000
MAX_DEPTH = 50
KEYWORDS = frozenset({"true", "false", "null", "and", "or", "not"})


_TOKEN = re.compile(
    r"""(?P<space>[ \t\r\n]+)
      | (?P<num>[0-9]+(?:\.[0-9]+)?(?![A-Za-z0-9_.]))
      | (?P<str>'[^']*'|"[^"]*")
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<op>==|!=|<=|>=|[(),+*/<>-])""",
    re.VERBOSE,
)
_HINTS = {
    "=": "unexpected '='; use '==' to compare",
    "!": "unexpected '!'; use 'not' to negate, or '!=' to compare",
    "&": "unexpected '&'; use 'and'",
    "|": "unexpected '|'; use 'or'",
}
_LITERALS: dict[str, Value] = {"true": True, "false": False, "null": None}


class ExpressionError(ValueError):
    """An expression that does not compile: what is wrong, and the 0-based column where."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} (at column {self.position})"


@dataclass(frozen=True, repr=False)
class Expression:
    """A compiled expression: evaluate it over many environments; it never raises."""

    source: str
    _evaluate: Evaluator = field(compare=False)
    _names: frozenset[str] = field(compare=False)

    def evaluate(self, env: Mapping[str, Value]) -> Value:
        """The value over `env` (names absent from it are null)."""
        return self._evaluate(env)

    def names(self) -> frozenset[str]:
        """Every name the expression reads (function names excluded)."""
        return self._names

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def compile_expression(source: str) -> Expression:
    """Parse `source` once; raises ExpressionError(message, position) if it is not valid."""
    if not isinstance(source, str):
        raise ExpressionError("an expression must be a string", 0)
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters", MAX_LENGTH)
    parser = _Parser(_tokenize(source))
    return Expression(source, parser.parse(), frozenset(parser.names))


class _Token(NamedTuple):
    kind: str  # "num", "str", "name", "kw", "op" or "end"
    text: str
    pos: int
    value: Value = None


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while (match := _TOKEN.match(source, pos)) is not None or pos < len(source):
        if match is None:
            char = source[pos]
            if char in "'\"":
                raise ExpressionError("unterminated string", pos)
            if char in "0123456789":
                raise ExpressionError("malformed number", pos)
            raise ExpressionError(_HINTS.get(char, f"unexpected character {char!r}"), pos)
        kind, text = match.lastgroup or "", match.group()
        if kind == "num":
            value: Value = float(text) if "." in text else int(text)
            if not fx.is_number(fx.clean(value)):
                raise ExpressionError("number too large", pos)
            tokens.append(_Token(kind, text, pos, value))
        elif kind == "str":
            tokens.append(_Token(kind, text, pos, text[1:-1]))
        elif kind == "name" and text in KEYWORDS:
            tokens.append(_Token("kw", text, pos))
        elif kind == "name" and text.lower() in KEYWORDS:
            raise ExpressionError(f"write {text.lower()!r} in lower case", pos)
        elif kind != "space":
            tokens.append(_Token(kind, text, pos))
        pos = match.end()
    return [*tokens, _Token("end", "", len(source))]


def _describe(token: _Token) -> str:
    kinds = {"num": "number ", "str": "string ", "name": "name "}
    if token.kind == "end":
        return "end of expression"
    return f"{kinds[token.kind]}{token.text}" if token.kind in kinds else repr(token.text)


class _Parser:
    """Recursive descent straight into closures, one method per grammar rule."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0
        self.names: set[str] = set()

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def at(self, kind: str, *texts: str) -> bool:
        return self.peek().kind == kind and self.peek().text in texts

    def fail(self, token: _Token, expected: str) -> NoReturn:
        raise ExpressionError(f"unexpected {_describe(token)}: expected {expected}", token.pos)

    def nest(self, token: _Token, delta: int = 1) -> None:
        self.depth += delta
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} levels deep", token.pos)

    def parse(self) -> Evaluator:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression", 0)
        result = self.parse_or()
        if self.at("op", ")"):
            raise ExpressionError("unbalanced ')': no '(' to close", self.peek().pos)
        if self.peek().kind != "end":
            self.fail(self.peek(), "an operator or the end")
        return result

    def parse_or(self) -> Evaluator:
        parts = [self.parse_and()]
        while self.at("kw", "or") and self.take():
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda env: any(p(env) is True for p in parts))

    def parse_and(self) -> Evaluator:
        parts = [self.parse_not()]
        while self.at("kw", "and") and self.take():
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else (lambda env: all(p(env) is True for p in parts))

    def parse_not(self) -> Evaluator:
        if not self.at("kw", "not"):
            return self.parse_comparison()
        self.nest(self.take())
        operand = self.parse_not()
        self.depth -= 1
        return lambda env: operand(env) is not True

    def parse_comparison(self) -> Evaluator:
        left = self.parse_arithmetic()
        if not self.at("op", *fx.COMPARISONS):
            return left
        test = fx.COMPARISONS[self.take().text]
        right = self.parse_arithmetic()
        if self.at("op", *fx.COMPARISONS):
            message = "comparisons cannot be chained; join them with 'and'"
            raise ExpressionError(message, self.peek().pos)
        return lambda env: test(left(env), right(env))

    def parse_arithmetic(self, level: int = 0) -> Evaluator:
        """Level 0: additive (+ -); level 1: term (* /); both left-associative."""
        operand = partial(self.parse_arithmetic, 1) if level == 0 else self.parse_unary
        first = operand()
        rest: list[tuple[str, Evaluator]] = []
        while self.at("op", *(("+", "-") if level == 0 else ("*", "/"))):
            rest.append((self.take().text, operand()))
        return fx.chain(first, rest) if rest else first

    def parse_unary(self) -> Evaluator:
        if not self.at("op", "-"):
            return self.parse_primary()
        self.nest(self.take())
        operand = self.parse_unary()
        self.depth -= 1
        return lambda env: fx.negate(operand(env))

    def parse_primary(self) -> Evaluator:
        token = self.take()
        if token.kind in ("num", "str") or (token.kind == "kw" and token.text in _LITERALS):
            value = _LITERALS.get(token.text) if token.kind == "kw" else token.value
            return lambda env: value
        if token.kind == "name" and self.at("op", "("):
            return self.parse_call(token)
        if token.kind == "name":
            self.names.add(name := token.text)
            return lambda env: fx.clean(env.get(name))
        if token.kind != "op" or token.text != "(":
            self.fail(token, "a value")
        self.nest(token)
        inner = self.parse_or()
        self.close(token, "')'")
        return inner

    def close(self, opening: _Token, expected: str) -> None:
        self.depth -= 1
        token = self.take()
        where = f"to close the '(' at column {opening.pos}"
        if token.kind == "end":
            raise ExpressionError(f"missing ')' {where}", token.pos)
        if token.kind != "op" or token.text != ")":
            self.fail(token, f"{expected} {where}")

    def parse_call(self, name: _Token) -> Evaluator:
        if name.text not in FUNCTION_NAMES:
            known = ", ".join(sorted(FUNCTION_NAMES))
            raise ExpressionError(f"unknown function {name.text!r} (known: {known})", name.pos)
        opening = self.take()
        self.nest(name)
        args: list[Evaluator] = []
        starts: list[int] = []
        while not (not args and self.at("op", ")")):
            starts.append(self.index)
            args.append(self.parse_or())
            if not (self.at("op", ",") and self.take()):
                break
        self.close(opening, "',' or ')'")
        fewest, most = fx.ARITY[name.text]
        if len(args) < fewest or (most is not None and len(args) > most):
            wanted = f"{fewest}" if fewest == most else f"at least {fewest}"
            wanted = f"{fewest} or {most}" if most and most > fewest else wanted
            message = f"{name.text}() takes {wanted} argument(s), got {len(args)}"
            raise ExpressionError(message, name.pos)
        if name.text == "if":
            cond, then, otherwise = args
            return lambda env: then(env) if cond(env) is True else otherwise(env)
        if name.text == "coalesce":
            return fx.coalesce(tuple(args))
        if name.text == "prorate":
            return self.prorate(name, args, starts)
        function, arguments = fx.FUNCTIONS[name.text], tuple(args)
        return lambda env: function([arg(env) for arg in arguments])

    def prorate(self, name: _Token, args: list[Evaluator], starts: list[int]) -> Evaluator:
        n_items, max_missing = (self.whole_number(start) for start in starts[:2])
        items = tuple(args[2:])
        if len(items) != n_items:
            message = f"prorate({n_items}, ...) needs {n_items} items, got {len(items)}"
            raise ExpressionError(message, name.pos)
        if max_missing >= n_items:
            message = f"prorate() max_missing ({max_missing}) must be below the number of items"
            raise ExpressionError(message, self.tokens[starts[1]].pos)
        return lambda env: fx.prorate(n_items, max_missing, [item(env) for item in items])

    def whole_number(self, start: int) -> int:
        token, following = self.tokens[start], self.tokens[start + 1]
        if (
            token.kind == "num"
            and isinstance(token.value, int)
            and following.kind == "op"
            and following.text in ",)"
        ):
            return token.value
        usage = "e.g. prorate(9, 2, q1, q2, q3, q4, q5, q6, q7, q8, q9)"
        message = f"prorate() takes whole numbers as its first two arguments, {usage}"
        raise ExpressionError(message, token.pos)
