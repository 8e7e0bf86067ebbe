"""A send cancelled over an anyio byte stream: nothing more is written after it.

anyio's ``send()`` cancelled while it waits may have written none, part or all of
its bytes and does not say which (asyncio: none if cancelled at its first yield,
all once the transport took them; trio: part of them under backpressure). So
``Framed`` over an anyio stream stops writing there: the next send, ``feed`` and
``send_eof`` raise ``ClosedStreamError`` naming the cut send, and no later frame
follows a cut one on the wire. The send is held by ``Gated`` (an anyio stream over
real loopback TCP whose ``send`` waits at a gate the test opens), so the cancellation
lands where the test says, on asyncio (uvloop too) and trio.
"""

from __future__ import annotations

import anyio
import pytest

from wsframed import ClosedStreamError, Framed
from wsframed.codecs import LengthPrefixedCodec

from .loop_families import families, run
from .test_bridge_families import read_to_eof, tcp_pair
from .test_mutation_pump_races import Gated, blocked, waiting

FRAME = b"0123456789" * 10


@families
def test_a_cancelled_send_ends_writing_and_the_peer_gets_the_frames_before(
    family: str,
) -> None:
    codec = LengthPrefixedCodec()
    encoded = codec.encode(FRAME)
    cut = (
        f"a send of {len(encoded)} bytes over this anyio stream was cancelled and may "
        "have been cut short: nothing more is sent on it"
    )

    async def body() -> None:
        async with tcp_pair("anyio") as (far, (raw,)):
            ours = Gated(raw)
            framed = Framed(ours, codec)
            await framed.send(FRAME)
            await framed.send(FRAME)
            ours.hold_sends()
            async with anyio.create_task_group() as group:
                scope = anyio.CancelScope()

                async def sending() -> None:
                    with scope:
                        await framed.send(FRAME)

                group.start_soon(sending)
                await waiting(ours.sending)
                scope.cancel()
                await blocked()
            assert scope.cancelled_caught
            ours.release_sends()
            with pytest.raises(ClosedStreamError) as later:
                await framed.send(b"after")
            assert str(later.value) == cut
            with pytest.raises(ClosedStreamError) as fed:
                framed.feed(b"after")
            assert str(fed.value) == cut
            with pytest.raises(ClosedStreamError) as ended:
                await framed.send_eof()
            assert str(ended.value) == cut
            await framed.aclose()
            assert await read_to_eof(far) == encoded * 2

    run(family, body)
