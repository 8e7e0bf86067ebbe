"""The items/s-against-batch-size chart (needs matplotlib: ``pip install wsframed[bench]``)."""

from __future__ import annotations

import math
from pathlib import Path

from .suite import Results

__all__ = ["chart"]


def chart(results: Results, path: str | Path) -> None:
    """Draw items/s against items per flush (msgpack) and save it as ``path`` (PNG).

    Raises ``ImportError`` with an install hint when matplotlib is missing, and
    ``ValueError`` when the run measured no batch sizes.
    """
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise ImportError("the chart needs matplotlib: pip install 'wsframed[bench]'") from exc
    sizes = sorted(key[1] for key in results.best if key[0] == "sweep")
    if not sizes:
        raise ValueError("this run measured no batch sizes (run the full set)")
    rates = [results.rate("sweep", size) for size in sizes]
    limits = [results.rate("sweep_limit", size) for size in sizes]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    axes.plot(sizes, rates, marker="o", label="Framed over WebSocket: feed() x N, flush()")
    # The limit was measured beside each point; its best run is the line (the points'
    # own ratios, to the run beside each, are in the report's table).
    limit = max((rate for rate in limits if not math.isnan(rate)), default=math.nan)
    naive = results.rate("small", "msgpack", "naive")
    send_all = results.rate("small", "msgpack", "recv_many")
    for rate, label, style in (
        (limit, "limit: raw TCP + plain msgpack, the best of its runs beside the points", "-."),
        (naive, "naive: one websockets message per item", "--"),
        (send_all, "Framed over WebSocket, send_all(items) + recv_many()", ":"),
    ):
        if not math.isnan(rate):
            axes.axhline(rate, linestyle=style, color="grey", linewidth=1)
            axes.annotate(
                label, (sizes[0], rate), textcoords="offset points", xytext=(2, 3), fontsize=8
            )
    axes.set_xscale("log", base=2)
    axes.set_xticks(sizes, [str(size) for size in sizes])
    axes.minorticks_off()
    axes.yaxis.set_major_formatter(lambda value, _: f"{value / 1000:.0f}k")
    axes.set_xlabel("items per flush (msgpack, ~28 bytes each)")
    axes.set_ylabel("items per second, received")
    axes.set_ylim(bottom=0)
    axes.grid(True, which="major", alpha=0.3)
    axes.set_title(
        f"wsframed: throughput against batch size (best of {results.config.repeat})",
        fontsize=10,
    )
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
