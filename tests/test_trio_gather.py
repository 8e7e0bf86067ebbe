"""``wsframed.loops.gather``: concurrent tasks on either loop family (the demo's and
bench's), and ``wsframed.trio.serve``'s argument errors yielding to the loop."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

import wsframed.trio
from wsframed.codecs import MsgpackCodec
from wsframed.loops import gather

from .loop_families import families, run

pytestmark = pytest.mark.timeout(60)


@families
def test_results_come_in_the_order_of_the_calls(family: str) -> None:
    async def body() -> None:
        order: list[str] = []

        async def slow() -> str:
            await anyio.sleep(0.05)
            order.append("slow")
            return "slow"

        async def fast() -> str:
            order.append("fast")
            return "fast"

        with anyio.fail_after(10):
            assert await gather(slow, fast) == ["slow", "fast"]
        assert order == ["fast", "slow"]  # they ran at once
        assert await gather() == []

    run(family, body)


@families
def test_a_failure_is_raised_as_itself_once_the_others_have_ended(family: str) -> None:
    async def body() -> None:
        ended: list[str] = []

        async def sleeper() -> None:
            try:
                await anyio.sleep(30)
            finally:
                ended.append("sleeper")

        async def failing() -> None:
            await anyio.lowlevel.checkpoint()
            raise KeyError("boom")

        with anyio.fail_after(10), pytest.raises(KeyError) as raised:
            await gather(sleeper, failing)
        assert raised.value.args == ("boom",)  # not folded into an ExceptionGroup
        assert ended == ["sleeper"]  # cancelled, and ended before gather returned

    run(family, body)


@families
def test_a_cancelled_gather_leaves_no_task_running(family: str) -> None:
    async def body() -> None:
        ended: list[str] = []

        async def sleeper(name: str) -> None:
            try:
                await anyio.sleep(30)
            finally:
                ended.append(name)

        with anyio.move_on_after(0.1) as scope:
            await gather(lambda: sleeper("a"), lambda: sleeper("b"))
        assert scope.cancelled_caught
        assert sorted(ended) == ["a", "b"]

    run(family, body)


def test_trio_serve_yields_before_raising_a_callers_mistake() -> None:
    import trio
    from trio.testing import assert_checkpoints

    async def handler(framed: object) -> None:
        pass

    async def main() -> None:
        serve = wsframed.trio.serve
        with assert_checkpoints(), pytest.raises(ValueError, match="empty list of codecs"):
            await serve(handler, "127.0.0.1", 0, [])
        with assert_checkpoints(), pytest.raises(TypeError, match="drop subprotocols="):
            await serve(handler, "127.0.0.1", 0, MsgpackCodec(), negotiate=True,
                        subprotocols=["x"])

    trio.run(main)
