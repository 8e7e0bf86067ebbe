"""The deadline of an RPC call's wait, on both loop families (``Shell.expire_at``).

``RpcPeer.call`` awaits its response future directly; the loop shell's ``expire_at``
bounds that wait (asyncio: a timer that sets ``TimeoutError`` on the future; trio: the
deadline kept on the future). What the caller gets: the result when it was set before
the deadline passed (also when the wait starts after the deadline), ``TimeoutError``
when it was not, and a result set while waiting ends the wait.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from wsframed.loops import current_shell

from .loop_families import families, run

pytestmark = pytest.mark.timeout(60)


@families
def test_a_result_set_before_the_deadline_passed_is_returned_after_it(family: str) -> None:
    async def body() -> None:
        shell = current_shell("test")
        future = shell.create_future()
        timer = shell.expire_at(future, shell.time() + 0.05)
        future.set_result("answer")
        await anyio.sleep(0.2)  # the deadline passes with the result already set
        assert await future == "answer"
        timer.cancel()

    run(family, body)


@families
def test_a_wait_past_the_deadline_raises_timeout_error(family: str) -> None:
    async def body() -> None:
        shell = current_shell("test")
        future = shell.create_future()
        timer = shell.expire_at(future, shell.time() + 0.05)
        with anyio.fail_after(30), pytest.raises(TimeoutError):
            await future
        timer.cancel()
        late = shell.create_future()
        shell.expire_at(late, shell.time() - 1)  # already past when the wait starts
        with anyio.fail_after(30), pytest.raises(TimeoutError):
            await late

    run(family, body)


@families
def test_a_result_set_while_waiting_ends_the_wait(family: str) -> None:
    async def body() -> None:
        shell = current_shell("test")
        future = shell.create_future()
        timer = shell.expire_at(future, shell.time() + 30)
        got: list[Any] = []

        async def wait() -> None:
            got.append(await future)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.lowlevel.checkpoint()
            future.set_result(7)
        timer.cancel()
        assert got == [7]

    run(family, body)
