"""``wsframed bench``: a tiny real run of every scenario (what it measures, in which
order, how it reports progress); the report's tables are tested in test_bench.py.

Timings are never asserted (speed lives in benchmarks/): the real run is checked on
its keys, unit counts and progress lines.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest

from wsframed.bench import Config, markdown, run, scenarios
from wsframed.bench.suite import DECODE_CODECS, MiB

pytestmark = pytest.mark.timeout(120)


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
                   "plain_tcp", "codec")
    expected_units = {
        **{
            ("small", name, mode): 10 if mode in ("naive", "send") else 40
            for name in config.codecs
            for mode in small_modes
        },
        ("sweep", 1): 16,
        ("sweep", 8): 16,
        ("sweep_limit", 1): 16,
        ("sweep_limit", 8): 16,
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
    assert "| lines, 100 B | TCP + split |" in text
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


def test_cpu_time_times_every_job_with_the_process_clock_and_says_so() -> None:
    """``cpu_time`` swaps the scenarios' clock for ``time.process_time`` during the run
    (seen from the progress callback, called before each job), restores wall-clock
    after, and the report names the clock."""
    config = Config(
        "tiny", repeat=1, items=40, message_items=10, bulk=1 * MiB, memory=1 * MiB,
        codecs=("length",), cpu_time=True,
    )
    clocks: set[object] = set()
    results = run(config, sections=("small",), progress=lambda _: clocks.add(scenarios.clock))
    assert clocks == {time.process_time}
    assert scenarios.clock is time.perf_counter
    assert "Times are CPU seconds of this process" in markdown(results)
    wall = replace(config, cpu_time=False)
    assert "Times are wall-clock." in markdown(run(wall, sections=("small",)))
