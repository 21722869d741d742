"""Run the benchmarks and print (or write) the results table: python -m bench [--write] [--only NAME] [--count N]."""

from __future__ import annotations

import argparse
import compileall
import sys
import time
from pathlib import Path

from bench.harness import ROOT, report
from bench.scenarios import BENCHMARKS, Workbench, cleanup_bench_objects

DOC = ROOT / "docs" / "benchmarks.md"
COUNT = 100  # guests in the scaled rows of the published table
INTRO = """# Benchmarks

`make bench` runs them (python -m bench --write rewrites this file). Every figure is a median of
interleaved runs against a baseline measured in the same run on the same libvirtd, so the ratio is
what matters: most of the machine's own speed cancels out (not all: vmctl's fixed start-up weighs
more when the machine is fast). The benchmarks touch only their own `bench-`
projects and remove them when done. vmctl's modules are byte-compiled first, as an installed vmctl's
are.

"""


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each side (default 5)")
    parser.add_argument(
        "--count",
        type=int,
        default=COUNT,
        help=f"guests in the scaled rows, the 1000-guest rows ten times as many (default {COUNT}; "
        "smaller while developing)",
    )
    parser.add_argument("--write", action="store_true", help=f"write the results to {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.write and args.count != COUNT:
        parser.error(f"--write publishes the table at --count {COUNT}")
    # What an installed vmctl runs: pip byte-compiles on install. From a checkout under
    # PYTHONDONTWRITEBYTECODE (set on the machines these figures come from), every run would
    # otherwise compile vmctl's modules from source, a cost no user of an installed vmctl pays.
    compileall.compile_dir(ROOT / "vmctl", quiet=1)
    cleanup_bench_objects()
    bench = Workbench()
    results = []
    start = time.monotonic()
    try:
        for name in args.only or list(BENCHMARKS):
            print(f"== {name}", flush=True)
            began = time.monotonic()
            results.extend(BENCHMARKS[name](bench, args.repeats, args.count))
            print(f"== {name} took {time.monotonic() - began:.0f} s", flush=True)
    finally:
        bench.close()
    table = report(results, wall_time=time.monotonic() - start)
    print(table)
    if args.write:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(INTRO + table + _analysis())
    return 0 if all(r.met for r in results) else 1


def _analysis() -> str:
    path = Path(__file__).parent / "ANALYSIS.md"
    return "\n" + path.read_text() if path.exists() else ""


if __name__ == "__main__":
    sys.exit(main())
