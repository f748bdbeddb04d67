"""``python -m bench.schema_costs [--rows N] [--rounds R] [--only PART ...] [--group PART,PART ...]``

What each secondary part of ``users``, ``user_tags`` and ``audit_events`` (index, unique key, foreign key) costs
the import scenario's raw inserts on SQLite. Each variant is a fresh database: PayRoster's schema as the
migrations make it, the same with one part removed (one variant per part), the same with every secondary part
removed (the primary keys and every column stay), and the minimal schema (``minimal_schema``). The same rows
go into each (``raw_seconds``: ``raw_import``, its pragmas and transactions of 100,000), the variants in
another order each round. Prints each variant's median seconds, its saving against PayRoster's schema, its
file's pages, the pages of each index (``dbstat``) and the load average beside. Nothing here asserts speed.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.__main__ import MINIMAL_KEYS, minimal_schema, raw_seconds
from bench.harness import Backend, setup

TABLES = tuple(MINIMAL_KEYS)  # the three tables the raw inserts write
SQLITE = Backend("sqlite")
NAMED = re.compile(r"CONSTRAINT (\w+) (UNIQUE|FOREIGN KEY)\s*\(([^)]*)\)", re.IGNORECASE)
UNNAMED = re.compile(r"(UNIQUE|FOREIGN KEY|CHECK)\b|.*\b(REFERENCES|UNIQUE)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Part:
    """A secondary part of one of the three tables, by its name in the migrated schema."""

    table: str
    kind: str  # "index", "unique" or "foreign key"
    name: str
    columns: str
    text: str  # its definition: a CREATE INDEX statement or an element of the CREATE TABLE statement


@dataclass
class Variant:
    """A schema to insert into: PayRoster's less ``removed``, or (``minimal``) the minimal schema."""

    label: str
    removed: tuple[Part, ...] = ()
    minimal: bool = False
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # this process's CPU seconds: less moved by other tenants
    pages: list[int] = field(default_factory=list)
    load: list[float] = field(default_factory=list)


def _elements(create: str) -> list[str]:
    """The top-level elements (columns and constraints) of a CREATE TABLE statement."""
    body = create.split("(", 1)[1].rsplit(")", 1)[0]
    found, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            found.append(body[start:i].strip())
            start = i + 1
    return [*found, body[start:].strip()]


def _create(conn: sqlite3.Connection, table: str) -> str:
    return str(conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()[0])


def _indexes(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """The CREATE INDEX statements of ``table`` (the ones its constraints make have none), by name."""
    sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL"
    return [(str(name), str(text)) for name, text in conn.execute(sql + " ORDER BY name", (table,))]


def parts(conn: sqlite3.Connection) -> list[Part]:
    """Every secondary index, unique key and foreign key of the three tables; their primary keys are not parts."""
    found = []
    for table in TABLES:
        for element in _elements(_create(conn, table)):
            named = NAMED.match(element)
            if named:
                kind = named[2].lower()
                found.append(Part(table, kind, named[1], f"({named[3].replace(' ', '')})", element))
            elif UNNAMED.match(element):  # removable only by name
                raise ValueError(f"an unnamed constraint in {table}: {element}")
        for name, sql in _indexes(conn, table):
            columns, where = sql.split("(", 1)[1].split(")", 1)
            found.append(Part(table, "index", name, f"({columns.replace(' ', '')}){where}", sql))
    return found


def remove(path: Path, removed: Sequence[Part]) -> None:
    """Removes ``removed`` from the database at ``path``: an index is dropped; a table losing a constraint is
    made again without it (SQLite cannot drop one), with its rows and its other indexes."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys=OFF")  # while a parent table is made again
        conn.execute("BEGIN")
        for part in removed:
            if part.kind == "index":
                conn.execute(f'DROP INDEX "{part.name}"')
        for table in TABLES:
            gone = {p.text for p in removed if p.table == table and p.kind != "index"}
            if not gone:
                continue
            kept = [e for e in _elements(_create(conn, table)) if e not in gone]
            indexes = _indexes(conn, table)
            conn.execute(f'CREATE TABLE "{table}_without" ({", ".join(kept)})')
            conn.execute(f'INSERT INTO "{table}_without" SELECT * FROM "{table}"')
            conn.execute(f'DROP TABLE "{table}"')
            conn.execute(f'ALTER TABLE "{table}_without" RENAME TO "{table}"')
            for _, sql in indexes:
                conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()


def index_pages(conn: sqlite3.Connection) -> dict[str, int]:
    """Pages of each table and index of the three tables (``dbstat``), an automatic index named by the
    constraint that made it."""
    names = {}
    for table in TABLES:
        names[table] = f"{table} (table)"
        uniques = {p.columns: p.name for p in parts(conn) if p.table == table and p.kind == "unique"}
        for _, name, _, origin, _ in conn.execute(f'PRAGMA index_list("{table}")'):
            info = conn.execute(f'PRAGMA index_info("{name}")').fetchall()
            columns = "(" + ",".join(str(r[2]) for r in info) + ")"
            names[name] = f"{table} primary key" if origin == "pk" else uniques.get(columns, name)
    counted = conn.execute("SELECT name, count(*) FROM dbstat GROUP BY name").fetchall()
    return {names[name]: pages for name, pages in counted if name in names}


def measure(template: Path, variant: Variant, rows: int, prefix: str, tmp: Path) -> dict[str, int]:
    """Inserts ``rows`` rows into a fresh database of ``variant``; its pages by index for the full schema."""
    path = tmp / "variant.db"
    env = {"PAYROSTER_DATABASE_URL": f"sqlite:///{path}"}
    if variant.minimal:
        minimal_schema(env)
    else:
        source = sqlite3.connect(template)
        source.execute("VACUUM INTO ?", (str(path),))
        source.close()
        remove(path, variant.removed)
    before, cpu = os.getloadavg()[0], time.process_time()
    variant.seconds.append(raw_seconds(SQLITE, env, rows, prefix, variant.minimal))
    variant.cpu.append(time.process_time() - cpu)
    variant.load += [before, os.getloadavg()[0]]
    conn = SQLITE.connect(env)
    try:
        variant.pages.append(conn.execute("PRAGMA page_count").fetchone()[0])
        return index_pages(conn) if not variant.removed and not variant.minimal else {}
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def variants(found: Sequence[Part], only: Sequence[str] = (), groups: Sequence[str] = ()) -> list[Variant]:
    """PayRoster's schema, one variant per part removed (``only``: per part named there), one per group of parts
    removed together (each comma-separated), all of them removed, the minimal schema."""
    by_name = {p.name: p for p in found}
    unknown = {*only, *(n for g in groups for n in g.split(","))} - set(by_name)
    if unknown:
        raise SystemExit(f"no such part: {', '.join(sorted(unknown))}")
    return [
        Variant("PayRoster's schema"),
        *(Variant(f"- {p.name}", (p,)) for p in found if not only or p.name in only),
        *(Variant(f"- {g}", tuple(by_name[n] for n in g.split(","))) for g in groups),
        Variant("- every secondary part", tuple(found)),
        Variant("minimal schema", minimal=True),
    ]


def order(items: list[Variant], round_: int) -> list[Variant]:
    """The round's order: forwards and backwards by turns, each round starting elsewhere."""
    turned = items if round_ % 2 == 0 else items[::-1]
    shift = (round_ * len(items)) // 3 % len(items)
    return turned[shift:] + turned[:shift]


def report(measured: list[Variant], found: Sequence[Part], sizes: dict[str, int], rows: int) -> None:
    """The table of variants, then the pages of each index."""
    for name, of in (("wall-clock", lambda v: v.seconds), ("CPU (this process)", lambda v: v.cpu)):
        full = statistics.median(of(measured[0]))
        minimal = statistics.median(of(measured[-1]))
        gap = full - minimal
        print(f"\n{rows:,} rows, {name} seconds; PayRoster's schema {full:.2f}, minimal {minimal:.2f},"
              f" ratio {full / minimal:.2f}")  # fmt: skip
        print(f"{'variant':<48}{'s median [min–max]':>24}{'saving s':>10}{'%':>7}{'of gap':>8}{'pages':>9}  load")
        for v in measured:
            med = statistics.median(of(v))
            saving = full - med
            spread = f"{med:.2f} [{min(of(v)):.2f}–{max(of(v)):.2f}]"
            share = f"{saving / gap:.0%}" if gap > 0 else ""
            load = f"{min(v.load):.1f}–{max(v.load):.1f}"
            print(f"{v.label:<48}{spread:>24}{saving:>10.2f}{saving / full:>7.0%}{share:>8}"
                  f"{int(statistics.median(v.pages)):>9,}  {load}")  # fmt: skip
    print(f"\npages (dbstat) after {rows:,} rows in PayRoster's schema:")
    kinds = {p.name: f"{p.kind} {p.columns}" for p in found}
    for name, pages in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<48}{pages:>9,}  {kinds.get(name, '')}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.schema_costs", description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", action="append", default=[], metavar="PART", help="a part to remove (repeatable)")
    parser.add_argument("--group", action="append", default=[], metavar="PART,PART", help="parts removed together")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="payroster-schema-costs-") as tmp, SQLITE.database() as env:
        setup(env, "workspace", "create", "--name", "Raw", "--admin-email", "r@x.com")
        template = Path(env["PAYROSTER_DATABASE_URL"].split(":///", 1)[1])
        SQLITE.settle(env)
        conn = sqlite3.connect(template)
        found = parts(conn)
        conn.close()
        measured = variants(found, args.only, args.group)
        print(f"SQLite {sqlite3.sqlite_version}; {len(measured)} variants, {args.rounds} rounds of {args.rows:,} rows;"
              f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)  # fmt: skip
        sizes: dict[str, int] = {}
        for round_ in range(args.rounds):
            for variant in order(measured, round_):
                sizes = measure(template, variant, args.rows, f"s{round_}-", Path(tmp)) or sizes
                print(f"  round {round_ + 1}: {variant.label:<48}{variant.seconds[-1]:>8.2f} s  load"
                      f" {variant.load[-2]:.1f}–{variant.load[-1]:.1f}", flush=True)  # fmt: skip
        report(measured, found, sizes, args.rows)


if __name__ == "__main__":
    main()
