"""Run Pinhole's benchmarks: every scaling/bench/bench_*.py, each exposing main().

    python scaling/bench/run.py            run them all, in name order
    python scaling/bench/run.py feed media run bench_feed.py and bench_media.py only

Each benchmark prints the figures it measured. A benchmark fails when main() raises or returns a
non-zero int; the others still run, and this script then exits 1. Benchmarks are not part of
`make test`: timings on a shared machine are noise, so they are read, not asserted.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parents[1]


def discover(selected: list[str]) -> list[Path]:
    """The bench_*.py files to run, by name order; `selected` names them with or without the prefix."""
    found = sorted(BENCH_DIR.glob("bench_*.py"))
    if not selected:
        return found
    by_name = {path.stem.removeprefix("bench_"): path for path in found}
    unknown = [name for name in selected if name.removeprefix("bench_").removesuffix(".py") not in by_name]
    if unknown:
        available = ", ".join(by_name) or "none"
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)} (available: {available})")
    return [by_name[name.removeprefix("bench_").removesuffix(".py")] for name in selected]


def run_one(path: Path) -> tuple[bool, float]:
    """Import the module from its file and call its main(); return (succeeded, seconds)."""
    started = time.perf_counter()
    try:
        spec = importlib.util.spec_from_file_location(f"pinhole_bench.{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        main = getattr(module, "main", None)
        if not callable(main):
            print(f"{path.name}: defines no main()", file=sys.stderr)
            return False, time.perf_counter() - started
        result = main()
        succeeded = result is None or result == 0
        if not succeeded:
            print(f"{path.name}: main() returned {result!r}", file=sys.stderr)
    except (Exception, SystemExit) as exc:
        if isinstance(exc, SystemExit) and exc.code in (None, 0):
            return True, time.perf_counter() - started
        traceback.print_exc()
        succeeded = False
    return succeeded, time.perf_counter() - started


def main(argv: list[str]) -> int:
    # Benchmarks import the app the same way main.py does: from the repository root.
    sys.path.insert(0, str(REPO_ROOT))
    paths = discover(argv)
    results: list[tuple[str, bool, float]] = []
    for path in paths:
        print(f"== {path.name}", flush=True)
        succeeded, seconds = run_one(path)
        results.append((path.name, succeeded, seconds))
        print(f"== {path.name}: {'ok' if succeeded else 'FAILED'} in {seconds:.1f} s", flush=True)

    failed = [name for name, succeeded, _ in results if not succeeded]
    if results:
        print()
    print(f"ran {len(results)} benchmark(s) from {BENCH_DIR.relative_to(REPO_ROOT)}/{':' if results else ''}")
    for name, succeeded, seconds in results:
        print(f"  {'ok    ' if succeeded else 'FAILED'} {name} ({seconds:.1f} s)")
    if failed:
        print(f"{len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
