"""`make bench`: run every benchmark module in a fresh process and print its figures.

Each ``bench/bench_*.py`` has a ``main()`` that prints lines of the form
``figure: <name> = <value> <unit> (target <op> <value>)``. A fresh process per module keeps
memory figures honest and one benchmark's caches out of the next one's numbers.
Pass module names (e.g. ``python -m bench mint``) to run only those.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    modules = sorted(p.stem for p in here.glob("bench_*.py"))
    wanted = [f"bench_{name}" for name in argv] if argv else modules
    failed = 0
    for module in wanted:
        print(f"== {module}", flush=True)
        started = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"bench.{module}"])
        print(f"   ({time.perf_counter() - started:.1f} s, exit {rc})", flush=True)
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
