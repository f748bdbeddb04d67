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


def _write_peak(path: Path) -> None:
    path.write_text(str(status_kib("self", "VmHWM")))


if __name__ == "__main__":
    out, module, *args = sys.argv[1:]
    atexit.register(_write_peak, Path(out))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
