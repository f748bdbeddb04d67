"""What one feed query may ask for, checked on the parsed query before any SQL is written (README, "OData feed").

A query past a limit is a client error (400 ``QueryTooComplex``) that names the limit. Without them such
queries reached the database and came back as outages: SQLite refuses an expression deeper than 1,000 levels
("Expression tree is too large") and a result of more than 2,000 columns, and deep nesting ran Python out of
stack (``RecursionError``) in the parser and in SQL compilation. The figures keep every accepted query well
inside both databases' limits; the time budget (``db.engine.Budget``) bounds what a query may cost beyond them.
"""

from __future__ import annotations

from dataclasses import dataclass

from payroster.odata import parser as P
from payroster.odata.errors import ODataTooComplex

MAX_DEPTH = P.MAX_NESTING  # levels of nesting of one expression; a chain of `and` (or of `or`) is one level
MAX_NODES = 2000  # operators, operands and values of every expression of the request together
MAX_IN_ITEMS = 500  # values of one `in` list
MAX_LAMBDA_NESTING = 3  # `any`/`all` inside one another
MAX_ORDERBY = 32  # keys of one $orderby
MAX_EXPAND_DEPTH = 4  # levels of $expand inside one another
MAX_EXPANSIONS = 20  # $expand items of the request together, at any level
MAX_INT64 = P.MAX_INT64  # Edm.Int64: $top, $skip and integer literals


@dataclass
class Tally:
    """What the request asked for so far, across its options."""

    nodes: int = 0
    expansions: int = 0

    def expression(self, node: P.Node, where: str) -> None:
        """Count one expression and check its shape (walked with a stack: a deep tree must not recurse)."""
        stack: list[tuple[object, int, int]] = [(node, 1, 0)]
        while stack:
            item, depth, lambdas = stack.pop()
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise ODataTooComplex(f"a query holds at most {MAX_NODES} operators and operands", where)
            if depth > MAX_DEPTH:
                raise ODataTooComplex(f"an expression nests at most {MAX_DEPTH} levels deep", where)
            if isinstance(item, P.In) and len(item.items) > MAX_IN_ITEMS:
                raise ODataTooComplex(f"an 'in' list holds at most {MAX_IN_ITEMS} values, not {len(item.items)}", where)
            if isinstance(item, P.Lambda):
                lambdas += 1
                if lambdas > MAX_LAMBDA_NESTING:
                    raise ODataTooComplex(f"any() and all() nest at most {MAX_LAMBDA_NESTING} deep", where)
            # The compiler writes a chain of one connective as one flat list (compiler.Compiler.boolean).
            for child in P.children(item):
                stack.append((child, depth + 1, lambdas))

    def orderby(self, items: list[P.OrderItem], where: str) -> None:
        """Count a $orderby: its number of keys, and each key as an expression."""
        if len(items) > MAX_ORDERBY:
            raise ODataTooComplex(f"$orderby takes at most {MAX_ORDERBY} keys, not {len(items)}", where)
        for item in items:
            self.expression(item.expr, where)

    def expand(self, items: list[P.ExpandItem], level: int = 1) -> None:
        """Count a $expand with every nested option, at any level."""
        if items and level > MAX_EXPAND_DEPTH:
            raise ODataTooComplex(f"$expand nests at most {MAX_EXPAND_DEPTH} levels deep", "$expand")
        for item in items:
            self.expansions += 1
            if self.expansions > MAX_EXPANSIONS:
                raise ODataTooComplex(f"a query expands at most {MAX_EXPANSIONS} navigations", "$expand")
            if item.filter is not None:
                self.expression(item.filter, "$expand")
            self.orderby(item.orderby, "$expand")
            self.expand(item.expand, level + 1)
