"""BMv2's learn list (stage 1 of the digests) when its timeout changes under it.

``learning.cpp``: ``set_timeout`` wakes nobody. The transmit thread sees the
new timeout when it next wakes: at the end of its timed wait (from the
buffer's first sample), or when a sample starts a buffer or fills one.
"""

from __future__ import annotations

import asyncio

from p4ctl.switch.digests import _LearnList


async def _sent_after(changes: list[tuple[int, int]], wait: float) -> list[tuple[float, list]]:
    """Add one sample, apply each (max_samples, timeout_ms) at once, and watch ``wait`` s."""
    loop = asyncio.get_running_loop()
    sent: list[tuple[float, list]] = []
    start = loop.time()
    learn = _LearnList(loop, lambda samples: sent.append((loop.time() - start, samples)))
    learn.configure(*changes[0])
    learn.add((1,))
    for change in changes[1:]:
        learn.configure(*change)
    await asyncio.sleep(wait)
    learn.close()
    return sent


async def test_a_timeout_raised_while_the_thread_waits_is_waited_for() -> None:
    sent = await _sent_after([(3, 100), (3, 400)], 0.9)
    assert len(sent) == 1 and sent[0][0] > 0.35  # not at 100 ms


async def test_a_timeout_lowered_takes_effect_when_the_old_wait_ends() -> None:
    sent = await _sent_after([(3, 400), (3, 100)], 0.9)
    assert len(sent) == 1 and sent[0][0] > 0.35  # the wait begun for 400 ms


async def test_a_timeout_set_where_there_was_none_wakes_nobody() -> None:
    assert await _sent_after([(3, 0), (3, 100)], 0.5) == []


async def test_a_timeout_set_to_none_keeps_the_list_for_a_full_buffer() -> None:
    assert await _sent_after([(3, 100), (3, 0)], 0.4) == []
