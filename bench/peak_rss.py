"""``python -m bench.peak_rss FILE MODULE ARGS...``: run ``python -m MODULE ARGS...`` in this process, then write
the process's own peak resident memory (``VmHWM``, KiB) to FILE when it exits.

Why not ``ru_maxrss`` from ``wait4``: a child that Python starts with ``vfork`` (as ``subprocess`` does) carries
the parent's high-water mark into its own at ``exec``, so every command the harness (hundreds of MiB) starts
would read at least the harness's peak. ``VmHWM`` is the mark of the memory the command itself maps.
"""

from __future__ import annotations

import atexit
import runpy
import sys
from pathlib import Path


def status_kib(pid: int | str, name: str) -> int | None:
    """A memory figure of ``/proc/PID/status`` (``VmRSS`` now, ``VmHWM`` the peak) in KiB; ``pid`` may be "self".
    Here, not in the harness, so that the command this module runs imports nothing but the standard library."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return None


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs, by the parent each names in ``/proc/N/stat``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        parent = int(stat.rpartition(")")[2].split()[1])  # after the name, which may hold spaces: state, ppid
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        kids = children.get(stack.pop(), [])
        found += kids
        stack += kids
    return found


def tree_kib(pid: int, name: str) -> int | None:
    """The largest ``name`` figure (``VmHWM``, ``VmRSS``) of ``pid`` and every process under it, in KiB.

    ``payroster serve --workers 2`` is a supervisor whose worker processes serve the requests: the supervisor's
    own figure says nothing of a request's memory, a worker's does (with one worker, the process serves itself)."""
    figures = []
    for each in [pid, *descendants(pid)]:
        try:
            figures.append(status_kib(each, name))
        except OSError:  # it ended meanwhile
            continue
    return max((f for f in figures if f is not None), default=None)


def _write_peak(path: Path) -> None:
    path.write_text(str(status_kib("self", "VmHWM")))


if __name__ == "__main__":
    out, module, *args = sys.argv[1:]
    atexit.register(_write_peak, Path(out))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
