"""CborCodec's decoder on small items by key type: string keys against integer keys.

Run on demand from a checkout (nothing here runs in the test suite)::

    python benchmarks/cbor_keys.py                     # this checkout
    python benchmarks/cbor_keys.py --against main      # A/B in one process

No I/O: each shape's items are encoded once, and the clock (the process's CPU time)
covers feeding the bytes to a fresh ``CborCodec().decoder()`` in 64 KiB pieces and
iterating it after each piece, as ``Framed`` does. The baseline is cbor2 alone: one
``cbor2.CBORDecoder`` over all the bytes, no limits and no key checks. Best of
``--repeat`` rounds, the rounds of each package interleaved; the garbage collector on,
with the decoded items dropped as they come (a consumer that handles each item).

Shapes (about 10 to 30 bytes an item):

``str_keys``     ``{"id": i, "method": "add", "params": [1, 2]}`` (cbor2's strict mode passes it)
``int_keys``     ``{1: i, 2: "x", 3: [1, 2]}`` (every integer key is checked by the codec)
``int_nested``   ``[{1: i, 2: 2.5}, {1: -i, 2: None}]`` (maps inside an array)
``int_strings``  ``{1: i, 2: "x" * 40, 3: b"y" * 40}`` (key checks around string bodies)
"""

from __future__ import annotations

import argparse
import gc
import importlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

import cbor2  # noqa: E402

CHUNK = 64 * 1024
SHAPES: dict[str, Callable[[int], Any]] = {
    "str_keys": lambda i: {"id": i, "method": "add", "params": [1, 2]},
    "int_keys": lambda i: {1: i, 2: "x", 3: [1, 2]},
    "int_nested": lambda i: [{1: i, 2: 2.5}, {1: -i, 2: None}],
    "int_strings": lambda i: {1: i, 2: "x" * 40, 3: b"y" * 40},
}


def codec_rate(package: ModuleType, data: bytes, count: int) -> float:
    """Seconds to decode ``data`` (``count`` items) with a fresh CborCodec decoder."""
    decoder = package.codecs.CborCodec().decoder()
    feed = decoder.feed
    seen = 0
    with memoryview(data) as view:
        start = time.process_time()
        for at in range(0, len(data), CHUNK):
            feed(view[at : at + CHUNK])
            for _ in decoder:
                seen += 1
        seconds = time.process_time() - start
    if seen != count:
        raise AssertionError(f"decoded {seen} items, expected {count}")
    return seconds


def library_alone(data: bytes, count: int) -> float:
    """Seconds for one ``cbor2.CBORDecoder`` over all of ``data``."""
    decode = cbor2.CBORDecoder(BytesIO(data)).decode
    start = time.process_time()
    for _ in range(count):
        decode()
    return time.process_time() - start


def load_revision(rev: str, into: Path) -> ModuleType:
    """Import the ``wsframed`` package of git revision ``rev`` as ``wsframed_ab``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "wsframed"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    shutil.move(str(into / "wsframed"), str(into / "wsframed_ab"))
    sys.path.insert(0, str(into))
    return importlib.import_module("wsframed_ab")


def run(args: argparse.Namespace, packages: dict[str, ModuleType]) -> None:
    best: dict[tuple[str, str], float] = {}
    inputs = {}
    for shape in args.shapes:
        make = SHAPES[shape]
        inputs[shape] = b"".join(cbor2.dumps(make(i)) for i in range(args.count))
    for _ in range(args.repeat):
        for shape, data in inputs.items():
            gc.collect()
            key = (shape, "cbor2")
            best[key] = min(best.get(key, float("inf")), library_alone(data, args.count))
            for label, package in packages.items():
                gc.collect()
                key = (shape, label)
                seconds = codec_rate(package, data, args.count)
                best[key] = min(best.get(key, float("inf")), seconds)
    labels = list(packages)
    head = "| shape | bytes/item | cbor2 alone items/s | " + " | ".join(
        f"{label} items/s | {label} vs cbor2" for label in labels
    )
    if len(labels) == 2:
        head += f" | {labels[0]} / {labels[1]}"
    print(head + " |")
    print("|" + "---|" * (3 + 2 * len(labels) + (len(labels) == 2)))
    for shape, data in inputs.items():
        base = args.count / best[(shape, "cbor2")]
        cells = [f"{len(data) / args.count:.0f}", f"{base / 1e6:.2f}M"]
        rates = []
        for label in labels:
            rate = args.count / best[(shape, label)]
            rates.append(rate)
            cells.append(f"{rate / 1e6:.3f}M | {rate / base:.2f}")
        if len(labels) == 2:
            cells.append(f"{rates[0] / rates[1]:.2f}")
        print(f"| {shape} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), type=lambda s: s.split(","))
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="also measure git revision REV")
    args = parser.parse_args(argv)
    packages = {"this": importlib.import_module("wsframed")}
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            packages[args.against] = load_revision(args.against, Path(tmp))
        run(args, packages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
