"""Warnings a switch can cause at any rate: the first goes out, the rest are counted."""

from __future__ import annotations

from p4ctl.log_throttle import LogThrottle


def test_one_line_per_interval_and_the_next_says_how_many_were_held_back() -> None:
    now = [100.0]
    throttle = LogThrottle(10.0, clock=lambda: now[0])
    assert throttle.allow() == ""
    for _ in range(5):
        now[0] += 1.0
        assert throttle.allow() is None
    assert throttle.held_back == 5
    now[0] = 110.0
    assert throttle.allow() == " (and 5 more like it in the last 10 s)"
    assert throttle.held_back == 0
    now[0] = 125.0
    assert throttle.allow() == ""
