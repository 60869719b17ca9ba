"""Run every ``bench/bench_*.py`` module's ``main()``, or only the ones named.

python -m bench                   # all of them
python -m bench instrumentation   # bench/bench_instrumentation.py only
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def available() -> list[str]:
    """Benchmark names (``bench_instrumentation`` -> ``instrumentation``), sorted."""
    return sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules(bench.__path__)
        if info.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    names = [arg.removeprefix("bench_").removesuffix(".py") for arg in args]
    known = available()
    unknown = [name for name in names if name not in known]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(known)}", file=sys.stderr)
        return 2
    for name in names or known:
        print(f"=== bench_{name} ===", flush=True)
        start = time.perf_counter()
        module = importlib.import_module(f"bench.bench_{name}")
        module.main()
        print(f"--- bench_{name}: {time.perf_counter() - start:.1f} s\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
