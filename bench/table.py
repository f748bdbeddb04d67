"""``python -m bench.table [var/bench.json]``: a run's figures as the Markdown table of bench/README.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _fig(f: dict[str, Any] | None, fmt: str) -> str:
    if not f:
        return ""
    if len(f["values"]) == 1:
        return f"{f['median']:{fmt}} (n=1)"
    return f"{f['median']:{fmt}} [{f['min']:{fmt}}–{f['max']:{fmt}}]"


def markdown(report: dict[str, Any]) -> str:
    """The run's machine line and its table."""
    m = report["machine"]
    databases = "".join(  # the databases the run measured (``--backend`` may have left one out)
        f", {name} {m[key]}"
        for name, key in (("SQLite", "sqlite_version"), ("PostgreSQL", "postgresql_version"))
        if key in m
    )
    lines = [
        f"Run {report['started']} ({report['mode']}, {report.get('total_seconds', 0) / 60:.0f} min): "
        f"{m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}{databases}, {m['server_workers']} server "
        f"worker{'s' if m['server_workers'] != 1 else ''}; {m['settings']}.",
        "",
        "| scenario | db | ours | baseline | ratio | target | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in report["rows"]:
        fmt = ",.1f" if row["ours"]["median"] < 100 else ",.0f"
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else ""
        met = "—" if row["met"] is None else ("yes" if row["met"] else "**no**")
        lines.append(
            f"| {row['scenario'].strip()} | {row['db']} | {_fig(row['ours'], fmt)} | {_fig(row['baseline'], fmt)} "
            f"| {ratio} | {row['target']} | {met} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "var/bench.json").read_text())))
