"""Parser for OData system query options: ``$filter``, ``$orderby``, ``$select``, ``$expand``.

Written by hand rather than taken from ``odata-query``: that package parses ``$filter`` only, while the
feed needs one grammar for every option (nested ``$expand`` options embed the others), the 4.01 rules
(case-insensitive operators and functions, ``in`` lists, ``$``-less nested options) and exact ABNF
whitespace and literal rules, so that every case the OASIS ABNF test suite marks invalid is refused. The
parser is model-free: it checks syntax and builds an AST; names are resolved by the compiler.

Valid syntax that PayRoster does not implement (casts, bound functions, geo literals, ``$levels``...) is
parsed to the end, so an invalid tail is still a syntax error, and then reported as unsupported (501).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from payroster.odata import literals as L
from payroster.odata.errors import ODataBadQuery, ODataSyntaxError, ODataTooComplex, ODataUnsupported

# Levels of nesting an expression may have (parentheses, calls, lambdas, `not`, `-`, nested options), checked
# while parsing: the parser recurses at each level, and 2,000 nested parentheses ran it out of Python's stack
# (odata/limits.py checks the parsed tree against the same figure).
MAX_NESTING = 32
MAX_INT64 = 2**63 - 1  # Edm.Int64, the widest integer of the model

# --- AST -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lit:
    """A literal: ``kind`` is null, bool, int, decimal, string, guid, date, datetime, time or duration."""

    kind: str
    text: str


@dataclass(frozen=True)
class Prop:
    """A member path such as ``lastName`` or ``directManager/lastName`` (may start at a lambda variable)."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class Lambda:
    """``path/any(var: body)`` or ``path/all(var: body)``; ``any()`` has no variable and no body."""

    path: tuple[str, ...]
    op: str
    var: str | None
    body: Node | None


@dataclass(frozen=True)
class Count:
    """``path/$count``."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class Call:
    """A canonical function call; ``name`` is lower case."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class BinOp:
    """A binary operator; ``op`` is lower case (``eq``, ``and``, ``add``...)."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    """``not expr``."""

    operand: Node


@dataclass(frozen=True)
class Neg:
    """``-expr``."""

    operand: Node


@dataclass(frozen=True)
class In:
    """``expr in (a, b)`` or ``expr in [a, b]``."""

    left: Node
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Opaque:
    """Valid syntax with no meaning in PayRoster (a cast, a bound function, a JSON object...)."""

    reason: str


Node = Lit | Prop | Lambda | Count | Call | BinOp | Not | Neg | In | Opaque


@dataclass(frozen=True)
class OrderItem:
    """One ``$orderby`` key."""

    expr: Node
    descending: bool


@dataclass
class ExpandItem:
    """One ``$expand`` item with its nested options."""

    path: tuple[str, ...]
    select: list[tuple[str, ...]] | None = None
    expand: list[ExpandItem] = field(default_factory=list)
    filter: Node | None = None
    orderby: list[OrderItem] = field(default_factory=list)
    top: int | None = None
    skip: int | None = None
    count: bool = False


# --- functions -------------------------------------------------------------------------------------

# name -> (min args, max args, implemented in SQL)
FUNCTIONS: dict[str, tuple[int, int, bool]] = {
    "contains": (2, 2, True),
    "startswith": (2, 2, True),
    "endswith": (2, 2, True),
    "indexof": (2, 2, True),
    "length": (1, 1, True),
    "substring": (2, 3, True),
    "tolower": (1, 1, True),
    "toupper": (1, 1, True),
    "trim": (1, 1, True),
    "concat": (2, 2, True),
    "year": (1, 1, True),
    "month": (1, 1, True),
    "day": (1, 1, True),
    "hour": (1, 1, True),
    "minute": (1, 1, True),
    "second": (1, 1, True),
    "date": (1, 1, True),
    "now": (0, 0, True),
    "round": (1, 1, True),
    "floor": (1, 1, True),
    "ceiling": (1, 1, True),
    "time": (1, 1, False),
    "fractionalseconds": (1, 1, False),
    "totaloffsetminutes": (1, 1, False),
    "totalseconds": (1, 1, False),
    "mindatetime": (0, 0, False),
    "maxdatetime": (0, 0, False),
    "matchespattern": (2, 2, False),
    "hassubset": (2, 2, False),
    "hassubsequence": (2, 2, False),
    "geo.distance": (2, 2, False),
    "geo.intersects": (2, 2, False),
    "geo.length": (1, 1, False),
}
_TYPE_FUNCTIONS = {"cast", "isof"}
_BINARY_OPS = {
    "or": 1,
    "and": 2,
    "eq": 3,
    "ne": 3,
    "gt": 4,
    "ge": 4,
    "lt": 4,
    "le": 4,
    "add": 5,
    "sub": 5,
    "mul": 6,
    "div": 6,
    "divby": 6,
    "mod": 6,
}

_WS = re.compile(r"[ \t]*")
_OP = re.compile(r"[ \t]+(divby|div|[a-zA-Z]{2,3})[ \t]+")
_IDENT = re.compile(L.IDENT)
_NAME = re.compile(rf"{L.IDENT}(?:\.{L.IDENT})*")
_KEYWORD_LITERALS = [
    ("null", re.compile(r"null\b")),
    ("bool", re.compile(r"(?:true|false)\b")),
    ("guid", re.compile(rf"{L.GUID}(?![\w-])")),
    ("datetime", re.compile(rf"{L.DATETIME}(?![\w:.])")),
    ("date", re.compile(rf"{L.DATE}(?![\w:.-])")),
    ("time", re.compile(rf"{L.TIME}(?![\w:.])")),
    ("duration", re.compile(rf"(?:duration)?'{L.DURATION}'")),
    ("binary", re.compile(rf"binary'{L.BINARY}'")),
    ("geo", re.compile(r"geo(?:graphy|metry)'[^']*'")),
    ("enum", re.compile(rf"{L.QUALIFIED}'{L.ENUM_VALUE}'")),
    ("decimal", re.compile(r"(?:[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|NaN|-?INF)(?![\w.])")),
]
_STRING = re.compile(L.STRING)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_INT = re.compile(r"\d+")
_IT = re.compile(r"\$(?:it|this)(?!\w)")
_NOT = re.compile(r"(?i:not)(?:[ \t]+|(?=\())")
_LEVELS = re.compile(r"(?:[1-9]\d*|max)(?![\w])")


class Parser:
    """A recursive-descent parser over one option value; positions are reported in errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.unsupported: list[str] = []
        self.nesting = 0

    def enter(self) -> None:
        """One level deeper; refused past ``MAX_NESTING`` (``leave`` on the way out)."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise ODataTooComplex(f"an expression nests at most {MAX_NESTING} levels deep")

    def leave(self) -> None:
        self.nesting -= 1

    # --- plumbing ----------------------------------------------------------------------------------

    def fail(self, message: str) -> ODataSyntaxError:
        """A syntax error at the current position."""
        return ODataSyntaxError(f"{message} at position {self.pos}", self.pos)

    def peek(self, s: str) -> bool:
        """Whether the text continues with ``s``."""
        return self.text.startswith(s, self.pos)

    def take(self, s: str) -> bool:
        """Consume ``s`` if next."""
        if self.text.startswith(s, self.pos):
            self.pos += len(s)
            return True
        return False

    def expect(self, s: str) -> None:
        """Consume ``s`` or fail."""
        if not self.take(s):
            raise self.fail(f"expected {s!r}")

    def ws(self) -> None:
        """Skip optional blanks (BWS)."""
        m = _WS.match(self.text, self.pos)
        self.pos = m.end() if m else self.pos

    def match(self, pattern: re.Pattern[str]) -> str | None:
        """Consume and return a regex match, if any."""
        m = pattern.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group(0)

    def done(self) -> None:
        """Fail unless the whole text was consumed; then report unsupported parts."""
        if self.pos != len(self.text):
            raise self.fail("unexpected text")
        if self.unsupported:
            raise ODataUnsupported(self.unsupported[0])

    def opaque(self, reason: str) -> Opaque:
        """Note a valid but unsupported construct."""
        self.unsupported.append(reason)
        return Opaque(reason)

    # --- expressions -------------------------------------------------------------------------------

    def expression(self, level: int = 1) -> Node:
        """commonExpr with operator precedence (``or`` lowest); a whole one (``level`` 1) is a level of nesting,
        the right operands of its operators are not (their recursion is bounded by the precedences)."""
        if level > 1:
            return self.operators(level)
        self.enter()
        node = self.operators(level)
        self.leave()
        return node

    def operators(self, level: int) -> Node:
        left = self.unary()
        while True:
            m = _OP.match(self.text, self.pos)
            if m is None:
                return left
            op = m.group(1).lower()
            prec = _BINARY_OPS.get(op)
            if op in ("in", "has"):
                self.pos = m.end()
                left = self.postfix(left, op)
                continue
            if prec is None or prec < level:
                return left
            self.pos = m.end()
            right = self.expression(prec + 1)
            left = BinOp(op, left, right)

    def postfix(self, left: Node, op: str) -> Node:
        if op == "has":
            self.primary()
            return self.opaque("the has operator applies to enumerations, which PayRoster does not have")
        start = self.pos
        if self.peek("("):
            items = self.paren_list()
            if items is not None:
                return In(left, items)
            self.pos = start
        return In(left, (self.unary(),))

    def paren_list(self) -> tuple[Node, ...] | None:
        """``( literal, literal )`` after ``in``; ``None`` if it is a plain parenthesised expression."""
        start = self.pos
        self.expect("(")
        self.ws()
        if self.take(")"):
            return ()
        items = [self.expression()]
        self.ws()
        if self.take(")"):
            self.pos = start
            return None
        while True:
            self.ws()
            if self.take(")"):
                break
            self.expect(",")
            self.ws()
            items.append(self.expression())
        for item in items:
            if not isinstance(item, Lit):
                raise ODataSyntaxError("an 'in' list holds literals only", start)
        return tuple(items)

    def unary(self) -> Node:
        m = _NOT.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            self.enter()
            node: Node = Not(self.unary_operand())
            self.leave()
            return node
        if self.peek("-") and not self.literal_ahead():
            self.pos += 1
            self.ws()
            self.enter()
            node = Neg(self.unary_operand())
            self.leave()
            return node
        return self.primary()

    def unary_operand(self) -> Node:
        node = self.unary()
        m = _OP.match(self.text, self.pos)
        if m and m.group(1).lower() in ("in", "has"):
            self.pos = m.end()
            return self.postfix(node, m.group(1).lower())
        return node

    def literal_ahead(self) -> bool:
        return any(p.match(self.text, self.pos) for _, p in _KEYWORD_LITERALS)

    def primary(self) -> Node:
        if self.pos >= len(self.text):
            raise self.fail("expected an expression")
        ch = self.text[self.pos]
        if ch == "(":
            self.pos += 1
            self.ws()
            node = self.expression()
            self.ws()
            if self.peek(","):
                raise self.fail("a parenthesised list is allowed only after 'in'")
            self.expect(")")
            return node
        if ch in "[{":
            return self.json_value()
        if ch == "'":
            text = self.match(_STRING)
            if text is None:
                raise self.fail("unterminated string")
            return Lit("string", text[1:-1].replace("''", "'"))
        for kind, pattern in _KEYWORD_LITERALS:
            text = self.match(pattern)
            if text is not None:
                if kind in ("binary", "geo", "enum"):
                    return self.opaque(f"{kind} literals are not supported")
                if text in ("NaN", "INF", "-INF"):
                    return self.opaque("NaN and INF are not supported")
                return Lit(kind, text)
        if ch == "$":
            return self.dollar_member()
        if ch == "@":
            self.annotation()
            self.path_tail([])
            return self.opaque("annotations are not supported in expressions")
        return self.member()

    def dollar_member(self) -> Node:
        if self.take("$root"):
            if not self.peek("/"):
                raise self.fail("expected '/' after $root")
            self.path_tail([])
            return self.opaque("$root is not supported")
        word = self.match(_IT)
        if word is None:
            raise self.fail("unknown $ name")
        return self.path_tail([word])

    def annotation(self) -> None:
        self.expect("@")
        if self.match(_NAME) is None:
            raise self.fail("expected an annotation term")
        if self.take("#") and self.match(_IDENT) is None:
            raise self.fail("expected a qualifier")

    def member(self) -> Node:
        """firstMemberExpr: a property path, a canonical function call, or a lambda on a path."""
        name = self.match(_NAME)
        if name is None:
            raise self.fail("expected an expression")
        if self.peek("("):
            lower = name.lower()
            if lower in FUNCTIONS:
                return self.call(lower)
            if lower in _TYPE_FUNCTIONS:
                self.type_args()
                return self.opaque(f"{lower} is not supported")
            if "." in name:
                self.function_params()
                self.path_tail([])
                return self.opaque(f"function {name} is not supported")
            self.key_predicate()
            self.path_tail([])
            return self.opaque("key predicates are not supported in expressions")
        if "." in name:
            if not self.peek("/"):
                raise self.fail(f"{name} must be followed by '/' or '('")
            self.path_tail([])
            return self.opaque("type casts are not supported")
        return self.path_tail([name])

    def call(self, name: str) -> Node:
        low, high, implemented = FUNCTIONS[name]
        self.expect("(")
        self.ws()
        args: list[Node] = []
        if not self.take(")"):
            args.append(self.expression())
            self.ws()
            while self.take(","):
                self.ws()
                args.append(self.expression())
                self.ws()
            self.expect(")")
        if not low <= len(args) <= high:
            raise self.fail(f"{name} takes {low}..{high} arguments, not {len(args)}")
        if not implemented:
            return self.opaque(f"function {name} is not supported")
        return Call(name, tuple(args))

    def type_args(self) -> None:
        self.expect("(")
        self.ws()
        if self.match(_NAME) is None:
            self.expression()
            self.ws()
            self.expect(",")
            self.ws()
            if self.match(_NAME) is None:
                raise self.fail("expected a type name")
        elif self.take(","):
            self.ws()
            if self.match(_NAME) is None:
                raise self.fail("expected a type name")
        self.ws()
        self.expect(")")

    def function_params(self) -> None:
        """``(name=value, ...)`` of a bound or unbound function."""
        self.expect("(")
        self.ws()
        if self.take(")"):
            return
        while True:
            if self.match(_IDENT) is None:
                raise self.fail("expected a parameter name")
            self.ws()
            self.expect("=")
            self.ws()
            if self.take("@"):
                if self.match(_IDENT) is None:
                    raise self.fail("expected a parameter alias")
            else:
                self.expression()
            self.ws()
            if self.take(")"):
                return
            self.expect(",")
            self.ws()

    def key_predicate(self) -> None:
        self.expect("(")
        self.ws()
        if self.peek(")"):
            raise self.fail("empty key predicate")
        ident = _IDENT.match(self.text, self.pos)
        if ident and self.text.startswith("=", ident.end()):
            while True:
                if self.match(_IDENT) is None:
                    raise self.fail("expected a key name")
                self.expect("=")
                self.key_value()
                if not self.take(","):
                    break
        else:
            self.key_value()
        self.ws()
        self.expect(")")

    def key_value(self) -> None:
        node = self.primary()
        if not isinstance(node, Lit | Opaque):
            raise self.fail("a key value must be a literal")

    def path_tail(self, path: list[str]) -> Node:
        """``/segment`` continuations of a member path."""
        while self.take("/"):
            if self.take("$count"):
                if self.peek("("):
                    self.count_options()
                    return self.opaque("$count with options is not supported")
                return Count(tuple(path))
            if self.take("$filter("):
                self.ws()
                self.expression()
                self.ws()
                self.expect(")")
                if self.peek("("):
                    self.key_predicate()
                path.append("$filter")
                self.unsupported.append("filter path segments are not supported")
                continue
            if self.peek("@"):
                self.annotation()
                path.append("@")
                self.unsupported.append("annotations are not supported in expressions")
                continue
            name = self.match(_NAME)
            if name is None:
                raise self.fail("expected a path segment")
            lower = name.lower()
            if lower in ("any", "all") and self.peek("("):
                return self.lambda_(path, lower)
            if self.peek("("):
                if "." in name or not self.function_or_key():
                    self.function_params()
                    self.unsupported.append(f"bound function {name} is not supported")
                path.append(name)
                continue
            if "." in name:
                self.unsupported.append("type casts are not supported")
            path.append(name)
        return Prop(tuple(path))

    def function_or_key(self) -> bool:
        """After ``segment``, whether ``(...)`` is a key predicate (True) rather than function params."""
        start = self.pos
        try:
            self.key_predicate()
        except ODataSyntaxError:
            self.pos = start
            return False
        self.unsupported.append("key predicates are not supported in expressions")
        return True

    def lambda_(self, path: list[str], op: str) -> Node:
        self.expect("(")
        self.ws()
        if self.take(")"):
            if op == "all":
                raise self.fail("all() needs a lambda expression")
            return Lambda(tuple(path), op, None, None)
        var = self.match(_IDENT)
        if var is None:
            raise self.fail("expected a lambda variable")
        self.ws()
        self.expect(":")
        self.ws()
        body = self.expression()
        self.ws()
        self.expect(")")
        return Lambda(tuple(path), op, var, body)

    def count_options(self) -> None:
        """``$count(...)`` accepts only ``$filter`` and ``$search``."""
        self.expect("(")
        while True:
            name = self.option_name()
            if name == "filter":
                self.expression()
            elif name == "search":
                self.search_value()
            else:
                raise self.fail(f"${name} is not allowed inside $count()")
            if not self.take(";"):
                break
        self.expect(")")

    def json_value(self) -> Node:
        """A JSON array or object in an expression; arrays of literals serve ``in``."""
        if self.take("["):
            self.ws()
            items: list[Node] = []
            if not self.take("]"):
                while True:
                    items.append(self.json_item())
                    self.ws()
                    if self.take("]"):
                        break
                    self.expect(",")
                    self.ws()
            if all(isinstance(i, Lit) for i in items):
                return _Array(tuple(items))  # type: ignore[return-value]
            return self.opaque("JSON arrays of expressions are not supported")
        self.expect("{")
        self.ws()
        if not self.take("}"):
            while True:
                if self.match(_JSON_STRING) is None:
                    raise self.fail("expected a JSON member name")
                self.ws()
                self.expect(":")
                self.ws()
                self.json_item()
                self.ws()
                if self.take("}"):
                    break
                self.expect(",")
                self.ws()
        return self.opaque("JSON objects are not supported")

    def json_item(self) -> Node:
        text = self.match(_JSON_STRING)
        if text is not None:
            return Lit("string", _json_unescape(text))
        return self.expression()

    # --- query options -----------------------------------------------------------------------------

    def option_name(self) -> str:
        """A nested option name (``$``-less allowed, case-insensitive) followed by ``=``."""
        self.take("$")
        name = self.match(_IDENT)
        if name is None:
            raise self.fail("expected an option name")
        self.expect("=")
        return name.lower()

    def search_value(self) -> None:
        m = re.compile(r"[^;)]+").match(self.text, self.pos)
        if m is None:
            raise self.fail("expected a search expression")
        self.pos = m.end()
        self.unsupported.append("$search is not supported")

    def orderby(self) -> list[OrderItem]:
        """orderbyItem *( COMMA orderbyItem )."""
        items = []
        while True:
            expr = self.expression()
            descending = False
            m = re.compile(r"[ \t]+(?i:(asc|desc))(?![\w])").match(self.text, self.pos)
            if m:
                self.pos = m.end()
                descending = m.group(1).lower() == "desc"
            items.append(OrderItem(expr, descending))
            if not self.take(","):
                return items
            self.ws()

    def select(self) -> list[tuple[str, ...]]:
        """selectItem *( COMMA selectItem ); paths of plain names are supported."""
        items = []
        while True:
            items.append(self.select_item())
            if not self.take(","):
                return items
            self.ws()

    def select_item(self) -> tuple[str, ...]:
        if self.take("*"):
            return ("*",)
        path: list[str] = []
        while True:
            if self.peek("@"):
                self.annotation()
                self.unsupported.append("selecting annotations is not supported")
                path.append("@")
            else:
                name = self.match(_NAME)
                if name is None:
                    raise self.fail("expected a property name")
                if self.take(".*"):
                    self.unsupported.append("selecting namespace members is not supported")
                    return (*path, name + ".*")
                if "." in name:
                    self.unsupported.append("type casts and actions are not supported in $select")
                path.append(name)
            if self.peek("("):
                if "." in path[-1] or (len(path) > 0 and self.looks_like_params()):
                    self.param_names()
                    self.unsupported.append("function overloads are not supported in $select")
                else:
                    self.nested_options(select_context=True)
                    self.unsupported.append("nested options in $select are not supported")
                return tuple(path)
            if not self.take("/"):
                return tuple(path)

    def looks_like_params(self) -> bool:
        return re.compile(rf"\({L.IDENT}(?:,{L.IDENT})*\)").match(self.text, self.pos) is not None and not (
            self.text.startswith("($", self.pos)
        )

    def param_names(self) -> None:
        self.expect("(")
        while True:
            if self.match(_IDENT) is None:
                raise self.fail("expected a parameter name")
            if not self.take(","):
                break
        self.expect(")")

    def expand(self) -> list[ExpandItem]:
        """expandItem *( COMMA expandItem )."""
        items = []
        while True:
            items.append(self.expand_item())
            if not self.take(","):
                return items
            self.ws()

    def expand_item(self) -> ExpandItem:
        if self.take("$value"):
            self.unsupported.append("$expand=$value is not supported")
            return ExpandItem(("$value",))
        path: list[str] = []
        while True:
            if self.take("*"):
                self.unsupported.append("$expand=* is not supported")
                path.append("*")
                break
            if self.peek("@"):
                self.annotation()
                self.unsupported.append("expanding annotations is not supported")
                path.append("@")
            else:
                name = self.match(_NAME)
                if name is None:
                    raise self.fail("expected a navigation property")
                if "." in name:
                    self.unsupported.append("type casts are not supported in $expand")
                path.append(name)
            if not self.peek("/") or self.peek("/$"):
                break
            self.take("/")
        item = ExpandItem(tuple(path))
        if self.take("/$ref"):
            self.unsupported.append("$ref is not supported")
            if self.peek("("):
                self.nested_options(allowed={"filter", "search", "skip", "top", "count", "orderby"}, item=item)
            return item
        if self.take("/$count"):
            self.unsupported.append("$expand with /$count is not supported")
            if self.peek("("):
                self.nested_options(allowed={"filter", "search"}, item=item)
            return item
        if self.peek("("):
            self.nested_options(item=item)
        return item

    def nested_options(
        self, allowed: set[str] | None = None, item: ExpandItem | None = None, select_context: bool = False
    ) -> None:
        """``( option ; option ... )`` of an expand (or select) item."""
        item = item or ExpandItem(())
        self.expect("(")
        self.enter()
        while True:
            if self.peek("@"):
                self.take("@")
                if self.match(_IDENT) is None:
                    raise self.fail("expected a parameter alias")
                self.expect("=")
                self.expression()
                self.unsupported.append("parameter aliases are not supported")
            else:
                start = self.pos
                name = self.option_name()
                if allowed is not None and name not in allowed:
                    self.pos = start
                    raise self.fail(f"${name} is not allowed here")
                self.nested_option(name, item)
            if not self.take(";"):
                break
        self.expect(")")
        self.leave()

    def nested_option(self, name: str, item: ExpandItem) -> None:
        if name == "select":
            item.select = self.select()
        elif name == "expand":
            item.expand = self.expand()
        elif name == "filter":
            item.filter = self.expression()
        elif name == "orderby":
            item.orderby = self.orderby()
        elif name in ("top", "skip"):
            digits = self.match(_INT)
            if digits is None:
                raise self.fail(f"${name} takes a non-negative integer")
            setattr(item, name, integer(digits, f"${name}"))
        elif name == "count":
            value = self.match(re.compile(r"true|false"))
            if value is None:
                raise self.fail("$count takes true or false")
            item.count = value == "true"
        elif name == "levels":
            if self.match(_LEVELS) is None:
                raise self.fail("$levels takes a positive integer or max")
            self.unsupported.append("$levels is not supported")
        elif name == "search":
            self.search_value()
        elif name == "compute":
            self.expression()
            self.unsupported.append("$compute is not supported")
        else:
            raise self.fail(f"unknown option ${name}")


@dataclass(frozen=True)
class _Array:
    """A JSON array of literals (only meaningful after ``in``)."""

    items: tuple[Node, ...]


def _json_unescape(text: str) -> str:
    import json

    value = json.loads(text)
    assert isinstance(value, str)
    return value


def _finish_in(node: Any) -> Any:
    """Turn ``x in [..]`` arrays into ``In`` lists and refuse arrays anywhere else."""
    if isinstance(node, In) and len(node.items) == 1 and isinstance(node.items[0], _Array):
        return In(_finish_in(node.left), node.items[0].items)
    if isinstance(node, _Array):
        return Opaque("JSON arrays are supported only after 'in'")
    if isinstance(node, BinOp) and node.op in ("and", "or"):
        parts = [_finish_in(part) for part in chain(node)]
        return functools.reduce(lambda left, right: BinOp(node.op, left, right), parts)
    if isinstance(node, BinOp):
        return BinOp(node.op, _finish_in(node.left), _finish_in(node.right))
    if isinstance(node, Not):
        return Not(_finish_in(node.operand))
    if isinstance(node, Neg):
        return Neg(_finish_in(node.operand))
    if isinstance(node, In):
        return In(_finish_in(node.left), tuple(_finish_in(i) for i in node.items))
    if isinstance(node, Call):
        return Call(node.name, tuple(_finish_in(a) for a in node.args))
    if isinstance(node, Lambda) and node.body is not None:
        return Lambda(node.path, node.op, node.var, _finish_in(node.body))
    return node


def integer(digits: str, where: str) -> int:
    """A count ($top, $skip) as an Edm.Int64 value: 400 past it, before Python reads a thousand digits."""
    stripped = digits.lstrip("0") or "0"
    if len(stripped) > len(str(MAX_INT64)) or int(stripped) > MAX_INT64:
        raise ODataBadQuery(f"{where} takes an integer up to {MAX_INT64}", target=where)
    return int(stripped)


def _check_expr(text: str) -> None:
    if not text:
        raise ODataSyntaxError("empty expression", 0)
    if text[0] in " \t" or text[-1] in " \t":
        raise ODataSyntaxError("an expression may not start or end with blanks", 0)


def _unsupported_in(node: Any) -> str | None:
    if isinstance(node, Opaque):
        return node.reason
    for child in children(node):
        reason = _unsupported_in(child)
        if reason:
            return reason
    return None


def chain(node: BinOp) -> list[Node]:
    """The operands of a chain of ``node``'s connective, in order: ``a or b or c`` is ``[a, b, c]``. Clients
    write lists so (a few hundred ``or``); walked with a stack, as recursion ran out of Python's."""
    parts: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, BinOp) and item.op == node.op:
            stack += [item.right, item.left]
        else:
            parts.append(item)
    return parts


def children(node: Any) -> tuple[Any, ...]:
    """The operands of a node; a chain of ``and`` (or of ``or``) gives all of its operands at once."""
    if isinstance(node, BinOp) and node.op in ("and", "or"):
        return tuple(chain(node))
    return _children(node)


def check_depth(node: Node) -> None:
    """Refuse an expression nested deeper than ``MAX_NESTING`` (a chain of one connective being one level),
    before anything walks it recursively (walked here with a stack)."""
    stack: list[tuple[Any, int]] = [(node, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            raise ODataTooComplex(f"an expression nests at most {MAX_NESTING} levels deep")
        stack += [(child, depth + 1) for child in children(item)]


def _children(node: Any) -> tuple[Any, ...]:
    if isinstance(node, BinOp):
        return (node.left, node.right)
    if isinstance(node, Not | Neg):
        return (node.operand,)
    if isinstance(node, In):
        return (node.left, *node.items)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Lambda) and node.body is not None:
        return (node.body,)
    return ()


def parse_expression(text: str) -> Node:
    """Parse a ``$filter`` (or any commonExpr) value."""
    _check_expr(text)
    p = Parser(text)
    parsed = p.expression()
    p.done()
    check_depth(parsed)
    node = _finish_in(parsed)
    reason = _unsupported_in(node)
    if reason:
        raise ODataUnsupported(reason)
    return node  # type: ignore[no-any-return]


def parse_orderby(text: str) -> list[OrderItem]:
    """Parse a ``$orderby`` value."""
    _check_expr(text)
    p = Parser(text)
    items = p.orderby()
    p.done()
    for item in items:
        check_depth(item.expr)
    items = [OrderItem(_finish_in(i.expr), i.descending) for i in items]
    for item in items:
        reason = _unsupported_in(item.expr)
        if reason:
            raise ODataUnsupported(reason)
    return items


def parse_select(text: str) -> list[tuple[str, ...]]:
    """Parse a ``$select`` value into property paths (``("*",)`` for all)."""
    _check_expr(text)
    p = Parser(text)
    items = p.select()
    p.done()
    return items


def parse_expand(text: str) -> list[ExpandItem]:
    """Parse an ``$expand`` value with its nested options."""
    _check_expr(text)
    p = Parser(text)
    items = p.expand()
    p.done()
    for item in items:
        _check_expand_unsupported(item)
    return items


def _check_expand_unsupported(item: ExpandItem) -> None:
    for node in [item.filter, *(o.expr for o in item.orderby)]:
        if node is not None:
            check_depth(node)
            reason = _unsupported_in(_finish_in(node))
            if reason:
                raise ODataUnsupported(reason)
    for child in item.expand:
        _check_expand_unsupported(child)


def finish(node: Node) -> Node:
    """Normalise ``in`` arrays of an expression parsed inside nested options."""
    return _finish_in(node)  # type: ignore[no-any-return]


SYSTEM_OPTIONS = frozenset(
    {
        "filter",
        "orderby",
        "select",
        "expand",
        "top",
        "skip",
        "count",
        "format",
        "search",
        "skiptoken",
        "deltatoken",
        "apply",
        "compute",
        "levels",
        "index",
        "schemaversion",
        "id",
        # Temporal Data 4.0, §4.2.2 and §4.2.3 (odata/temporal.py)
        "at",
        "from",
        "to",
        "toinclusive",
    }
)


def option_name(raw: str) -> str | None:
    """The system query option a raw name denotes (4.01: ``$`` optional, any case), or ``None``."""
    name = raw[1:] if raw.startswith("$") else raw
    low = name.lower()
    return low if low in SYSTEM_OPTIONS else None
