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


def _write_peak(path: Path) -> None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            path.write_text(line.split()[1])


if __name__ == "__main__":
    out, module, *args = sys.argv[1:]
    atexit.register(_write_peak, Path(out))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
