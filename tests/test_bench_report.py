"""``wsframed bench``: the report's tables and targets from known figures, and a tiny
real run of every scenario (what it measures, in which order, what it reports).

Timings are never asserted (speed lives in benchmarks/): the report is checked on
synthetic results with exact figures, and the real run on its keys, unit counts and
progress lines.
"""

from __future__ import annotations

import math
import re

import pytest

from wsframed.bench import Config, Results, checks, markdown, run
from wsframed.bench.report import MEMORY_BOUND
from wsframed.bench.suite import DECODE_CODECS, MiB

pytestmark = pytest.mark.timeout(120)

CODECS = ("msgpack", "cbor")


def synthetic(memory_peak: int | None = 3 * MiB) -> Results:
    """Results of a run of msgpack and cbor with round figures (seconds per job)."""
    config = Config(
        "test", repeat=3, items=1000, message_items=100, bulk=64 * MiB, memory=256 * MiB,
        small_frame=1 * MiB, large_frame=16 * MiB, sweep=(1, 64), sweep_items=1000,
        codecs=CODECS,
    )
    results = Results(config)

    def put(key: tuple[object, ...], units: int, seconds: float) -> None:
        results.best[key] = seconds
        results.units[key] = units

    # msgpack: naive 10,000/s; send 12,000/s; send_all 60,000/s; recv_many 2,500,000/s
    for name, factor in (("msgpack", 1.0), ("cbor", 0.4)):
        put(("small", name, "naive"), 100, 0.01)
        put(("small", name, "send"), 100, 0.01 / 1.2)
        put(("small", name, "send_all"), 1000, 1 / 60 / factor)
        put(("small", name, "recv_many"), 1000, 1 / 2500 / factor)
        put(("small", name, "codec"), 1000, 1 / 500)
    put(("sweep", 1), 1000, 0.1)
    put(("sweep", 64), 1000, 0.002)
    put(("bulk", "websockets"), 64 * MiB, 0.5)
    put(("bulk", "wsstream"), 64 * MiB, 0.625)  # 0.80x: under the 0.9x target
    put(("bulk", "raw_tcp"), 64 * MiB, 0.25)
    for name in DECODE_CODECS:
        put(("decode", name, 1 * MiB), 1 * MiB, 0.01)
        put(("decode", name, 16 * MiB), 16 * MiB, 0.16 if name != "cbor" else 0.32)
    results.memory_peak = memory_peak
    results.memory_seconds = 2.25
    return results


def test_the_targets_are_judged_on_ratios_of_the_same_run() -> None:
    got = [(c.target, c.measured, c.met) for c in checks(synthetic())]
    assert got == [
        ("msgpack: send() per item >= 1x naive", "1.20x", True),
        ("msgpack: send_all + async for >= 5x naive", "6.00x", True),
        ("msgpack: send_all + recv_many >= 10x naive", "250.0x", True),
        ("cbor: send() per item >= 1x naive", "1.20x", True),
        ("cbor: send_all + async for >= 5x naive", "2.40x", False),
        ("cbor: send_all + recv_many >= 10x naive", "100.0x", True),
        ("cbor send_all >= 0.5x msgpack's rate", "0.40x", False),
        ("cbor recv_many >= 0.5x msgpack's rate", "0.40x", False),
        ("bulk: WsStream >= 0.9x raw websockets", "0.80x", False),
        *[
            (
                f"decode {name}: 16 MiB frame <= 20x 1 MiB (1 KiB chunks)",
                "32.0x" if name == "cbor" else "16.0x",
                name != "cbor",
            )
            for name in DECODE_CODECS
        ],
        ("slow reader, 256 MiB: traced peak <= 4 MiB", "3.00 MiB", True),
    ]


def test_a_target_not_measured_is_neither_met_nor_missed() -> None:
    results = synthetic(memory_peak=None)
    del results.best[("bulk", "wsstream")]
    got = {c.target: (c.measured, c.met) for c in checks(results)}
    assert got["bulk: WsStream >= 0.9x raw websockets"] == ("not measured", None)
    assert got["slow reader: traced memory bounded"] == ("not measured", None)
    assert math.isnan(results.rate("bulk", "wsstream"))
    assert math.isnan(results.seconds("bulk", "wsstream"))


def test_a_memory_peak_over_the_bound_is_missed() -> None:
    [memory] = [c for c in checks(synthetic(MEMORY_BOUND + 1)) if "slow reader" in c.target]
    assert (memory.measured, memory.met) == ("4.00 MiB", False)
    [memory] = [c for c in checks(synthetic(MEMORY_BOUND)) if "slow reader" in c.target]
    assert memory.met is True


def test_the_markdown_report_has_every_table_with_its_figures() -> None:
    text = markdown(synthetic())
    assert text.startswith("## wsframed bench (test): best of 3 rounds\n\nPython ")
    assert text.endswith("|\n")
    lines = text.splitlines()

    def table(title: str) -> list[str]:
        start = lines.index(title)
        rows = []
        for line in lines[start + 1 :]:
            if line.startswith("###"):
                break
            if line.startswith("| ") and not line.startswith("|---"):
                rows.append(line)
        return rows

    small = table(
        "### Small frames, client to server (1,000 items per batched transfer, 100 per "
        "one-message-per-item transfer)"
    )
    assert small == [
        "| codec | frame | naive: msg per item | ad-hoc StreamReader | send() per item | "
        "send_all + async for | send_all + recv_many | Framed over TCP | raw TCP + codec | "
        "codec alone, no I/O |",
        "| msgpack | 28 B | 10k | - | 12k (1.20x) | 60k (6.00x) | 2.50M (250.0x) | - | - | "
        "500k (50.0x) |",
        "| cbor | 28 B | 10k | - | 12k (1.20x) | 24k (2.40x) | 1.00M (100.0x) | - | - | "
        "500k (50.0x) |",
    ]
    assert table("### Batch size: msgpack, feed() N items then flush(), recv_many()") == [
        "| items per flush | items/s | vs naive |",
        "| 1 | 10k | 1.00x |",
        "| 64 | 500k | 50.0x |",
    ]
    assert table("### Bulk: 64 MiB in 64 KiB writes, read(65536)") == [
        "| path | throughput | vs raw websockets |",
        "| raw websockets send/recv | 134 MB/s | 1.00x |",
        "| WsStream write+drain / read | 107 MB/s | 0.80x |",
        "| raw TCP asyncio streams | 268 MB/s | 2.00x |",
    ]
    decode = table(
        "### Decoding one frame fed in 1 KiB chunks (1 MiB and 16 MiB; linear time means 16x)"
    )
    assert decode[0] == "| codec | 1 MiB | 16 MiB | ratio | throughput |"
    assert decode[1:] == [
        f"| {name} | 10.0 ms | {'320.0' if name == 'cbor' else '160.0'} ms | "
        f"{'32.0x' if name == 'cbor' else '16.0x'} | {'52' if name == 'cbor' else '105'} MB/s |"
        for name in DECODE_CODECS
    ]
    assert "No I/O; each decoder iterated after every chunk; default allocator settings." in lines
    assert table("### Memory: a slow reader (1 ms pause every 16 reads of 64 KiB)") == [
        "| received | traced peak (tracemalloc) | bound | time |",
        "| 256 MiB | 3,072 KiB | 4 MiB | 2.2 s |",
    ]
    targets = table("### Targets")
    assert targets[0] == "| target | measured |  |"
    assert "| cbor: send_all + async for >= 5x naive | 2.40x | **missed** |" in targets
    assert "| msgpack: send() per item >= 1x naive | 1.20x | met |" in targets
    assert len(targets) == 1 + len(checks(synthetic()))


def test_sections_without_figures_are_left_out() -> None:
    results = Results(Config("empty", repeat=1, items=1, message_items=1, bulk=MiB, memory=MiB))
    text = markdown(results)
    assert re.findall(r"^### .*", text, re.MULTILINE) == ["### Targets"]
    assert "| slow reader: traced memory bounded | not measured | n/a |" in text


def test_a_tiny_run_measures_every_job_each_round_and_reports_progress() -> None:
    """Two rounds of every scenario at toy sizes: each key measured, with its units,
    and one progress line per job and round, then the slow reader."""
    config = Config(
        "tiny", repeat=2, items=40, message_items=10, bulk=1 * MiB, memory=1 * MiB,
        small_frame=1 * MiB, large_frame=2 * MiB, sweep=(1, 8), sweep_items=16,
        codecs=("msgpack", "lines"),
    )
    shown: list[str] = []
    results = run(config, progress=shown.append)
    small_modes = ("naive", "adhoc", "send", "send_all", "recv_many", "tcp_framed", "raw_tcp",
                   "codec")
    expected_units = {
        **{
            ("small", name, mode): 10 if mode in ("naive", "send") else 40
            for name in config.codecs
            for mode in small_modes
        },
        ("sweep", 1): 16,
        ("sweep", 8): 16,
        ("bulk", "websockets"): MiB,
        ("bulk", "wsstream"): MiB,
        ("bulk", "raw_tcp"): MiB,
        **{("decode", name, size): size for name in DECODE_CODECS for size in (MiB, 2 * MiB)},
    }
    assert results.units == expected_units
    assert set(results.best) == set(expected_units)
    assert all(seconds > 0 for seconds in results.best.values())
    jobs = 2 * len(small_modes) + 2 + 3 + len(DECODE_CODECS)
    total = 2 * jobs + 1
    assert len(shown) == total
    assert shown[0] == f"[  1/{total}] round 1/2: msgpack naive"
    assert shown[jobs] == f"[{jobs + 1:3}/{total}] round 2/2: msgpack naive"
    assert shown[-1] == f"[{total:3}/{total}] slow reader, 1 MiB under tracemalloc"
    assert results.memory_peak is not None
    assert results.memory_seconds is not None
    text = markdown(results)
    assert "| lines | 100 B |" in text
    assert "### Batch size: msgpack, feed() N items then flush(), recv_many()" in text


def test_progress_is_one_line_per_round_off_a_terminal() -> None:
    """Into a log (not a terminal): a line when the round changes, not per job."""
    import io

    from wsframed.bench import progress_printer

    out = io.StringIO()
    show = progress_printer(out)
    for message in (
        "[  1/5] round 1/2: msgpack naive",
        "[  2/5] round 1/2: msgpack send",
        "[  3/5] round 2/2: msgpack naive",
        "[  4/5] round 2/2: msgpack send",
        "[  5/5] slow reader, 1 MiB under tracemalloc",
    ):
        show(message)
    lines = out.getvalue().splitlines()
    assert [line.split("s ", 1)[1] for line in lines] == [
        "round 1/2", "round 2/2", "slow reader, 1 MiB under tracemalloc"
    ]
    assert all(re.fullmatch(r" *\d+s .*", line) for line in lines)


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    import io

    from wsframed.bench import progress_printer

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    show = progress_printer(out)
    show("[  1/2] round 1/1: a")
    show("[  2/2] round 1/1: b")
    parts = out.getvalue().split("\r\x1b[K")
    assert parts[0] == ""
    assert [re.sub(r"^ *\d+s ", "", part) for part in parts[1:]] == [
        "[  1/2] round 1/1: a", "[  2/2] round 1/1: b"
    ]
