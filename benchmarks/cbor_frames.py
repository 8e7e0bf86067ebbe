"""Where a large CBOR frame's time goes: the codec's scanner, or CPython's collector.

Run on demand from a checkout (nothing here runs in the test suite)::

    python benchmarks/cbor_frames.py benign empty_arrays unknown_tags

For each shape of ``tests/cbor_worst_cases.py`` at 64 KiB, 256 KiB and 1 MiB, prints
ms per MiB (best of 3, CPU time) of ``CborCodec().decoder()`` fed in 64 KiB pieces
(``--piece``), and of ``cbor2.loads`` on the whole frame, each with the garbage
collector on and with ``gc.disable()`` around the decode only.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

import cbor2  # noqa: E402

from tests.cbor_worst_cases import cbor_worst_case  # noqa: E402
from wsframed.codecs import CborCodec  # noqa: E402

MIB = 1024 * 1024


def best_ms_per_mib(decode: Callable[[bytes], Any], data: bytes, collector: bool) -> float:
    best = float("inf")
    for _ in range(3):
        gc.collect()
        if not collector:
            gc.disable()
        started = time.process_time()
        result = decode(data)
        seconds = time.process_time() - started
        gc.enable()
        del result
        best = min(best, seconds)
    return best / len(data) * MIB * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shapes", nargs="+")
    parser.add_argument("--piece", type=int, default=64 * 1024, metavar="BYTES")
    args = parser.parse_args(argv)

    def codec(data: bytes) -> list[Any]:
        decoder = CborCodec().decoder()
        items: list[Any] = []
        for at in range(0, len(data), args.piece):
            decoder.feed(data[at : at + args.piece])
            items.extend(decoder)
        return items

    print("| shape | size | codec GC on | codec GC off | cbor2.loads GC on | cbor2.loads GC off |")
    print("|---|---|---|---|---|---|")
    for shape in args.shapes:
        for size in (64 * 1024, 256 * 1024, MIB):
            data = cbor_worst_case(shape, size)
            cells = [
                f"{best_ms_per_mib(decode, data, collector):.1f}"
                for decode in (codec, cbor2.loads)
                for collector in (True, False)
            ]
            print(f"| {shape} | {size // 1024} KiB | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
