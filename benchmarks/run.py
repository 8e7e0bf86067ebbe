"""Run the wsframed benchmark suite: small frames per codec, bulk, decoding, memory.

Run on demand from a checkout (nothing here runs in the test suite)::

    python benchmarks/run.py                      # the full set: several minutes
    python benchmarks/run.py --quick              # the quick set (as `wsframed bench`)
    python benchmarks/run.py --chart docs/batch-size.png   # also sweep batch sizes

It prints a markdown table on stdout (progress on stderr): absolute figures and ratios
against baselines measured in the same run (one websockets message per item, an
ad-hoc StreamReader, raw websockets, raw TCP), each the best of several rounds, with
the Python, websockets, msgpack and cbor2 versions. ``--chart`` needs matplotlib
(``pip install 'wsframed[bench]'``). The suite itself lives in ``wsframed.bench``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from wsframed.bench import FULL, QUICK, markdown, progress_printer, run

QUICK_SWEEP = (1, 4, 16, 64, 256, 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the quick set (under a minute)")
    parser.add_argument(
        "--chart", metavar="FILE", help="also sweep batch sizes and draw the chart (PNG)"
    )
    parser.add_argument("--repeat", type=int, metavar="N", help="rounds (best one counts)")
    parser.add_argument(
        "--cpu-time", action="store_true", help="CPU seconds of this process, not wall-clock"
    )
    parser.add_argument("--output", metavar="FILE", help="also write the table to FILE")
    args = parser.parse_args(argv)

    config = QUICK if args.quick else FULL
    if args.repeat:
        config = replace(config, repeat=args.repeat)
    if args.cpu_time:
        config = replace(config, cpu_time=True)
    if args.chart:
        if not config.sweep:
            config = replace(config, sweep=QUICK_SWEEP, sweep_items=config.items)
        from wsframed.bench.chart import chart  # fail early without matplotlib

    started = time.monotonic()
    results = run(config, progress=progress_printer(sys.stderr))
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")
    sys.stderr.write(f"done in {time.monotonic() - started:.0f} s\n")
    table = markdown(results)
    sys.stdout.write(table)
    if args.output:
        Path(args.output).write_text(table)
    if args.chart:
        chart(results, args.chart)
        sys.stderr.write(f"chart written to {args.chart}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
