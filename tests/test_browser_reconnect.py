"""The reconnecting loop's decisions in Pyodide, checked on CPython.

The loop itself runs in Pyodide (tests/interop/test_pyodide.py,
``test_the_reconnecting_loop_in_pyodide``); its delays and its retry decision are
plain functions, compared here with websockets' own.
"""

from __future__ import annotations

import itertools

import pytest
import websockets.client

from wsframed.backends import browser
from wsframed.client import _browser_options


def test_the_delays_are_websockets_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same random draw for both: a delay below 5 s first, then 3.1 s growing by
    # 1.618 up to 90 s, then 90 s for ever.
    monkeypatch.setattr("random.random", lambda: 0.5)
    ours = list(itertools.islice(browser.backoff(), 12))
    assert ours == list(itertools.islice(websockets.client.backoff(), 12))
    assert ours[:2] == [2.5, 3.1]
    assert ours[8:] == [pytest.approx(89.99353567), 90.0, 90.0, 90.0]


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (ConnectionRefusedError("could not open a WebSocket"), True),
        (TimeoutError("did not open within 10 s"), True),
        (OSError("any"), True),
        (ValueError("the browser refuses the WebSocket URL"), False),
        (TypeError("connect() in Pyodide takes ..."), False),
    ],
)
def test_which_failed_connects_are_retried(exc: Exception, retried: bool) -> None:
    assert browser.process_exception(exc) is (None if retried else exc)


def test_the_loop_options_are_not_given_to_the_websocket() -> None:
    options = {
        "compression": None,
        "close_timeout": 10,
        "reconnect_delays": browser.backoff,
        "process_exception": browser.process_exception,
        "open_timeout": 5,
    }
    assert _browser_options(options) == {"open_timeout": 5}
    with pytest.raises(TypeError, match="the browser has no ping_interval"):
        _browser_options({"ping_interval": 20})
