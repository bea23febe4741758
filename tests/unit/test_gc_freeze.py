"""The garbage-collector freezer: start-up objects and full-collection survivors leave the walk."""

from __future__ import annotations

import asyncio
import gc
import weakref

from p4ctl.gc_freeze import GcFreezer


async def test_freezes_at_install_and_after_each_full_collection() -> None:
    freezer = GcFreezer()
    try:
        freezer.install()
        assert freezer.freezes == 1
        assert freezer.frozen > 0
        assert gc.get_objects(generation=2) == []  # everything old is frozen
        survivors = [[i] for i in range(1000)]  # long-lived containers, new since install
        before = freezer.frozen
        gc.collect(1)
        await asyncio.sleep(0)
        assert freezer.freezes == 1  # a young collection changes nothing
        gc.collect(2)
        await asyncio.sleep(0)
        assert freezer.freezes == 2
        assert freezer.frozen > before
        walked = {id(o) for o in gc.get_objects()}  # what the collector still walks
        assert not any(id(s) in walked for s in survivors)
    finally:
        freezer.remove()
        gc.unfreeze()


async def test_removed_freezer_leaves_the_collector_alone() -> None:
    freezer = GcFreezer()
    freezer.install()
    freezer.remove()
    gc.unfreeze()
    gc.collect(2)
    await asyncio.sleep(0)
    assert freezer.freezes == 1
    assert gc.get_freeze_count() == 0
    assert freezer._on_gc not in gc.callbacks


async def test_settle_collects_and_freezes_what_came_after_install() -> None:
    freezer = GcFreezer()
    try:
        freezer.settle()  # not installed: nothing to do
        assert freezer.freezes == 0 and gc.get_freeze_count() == 0
        freezer.install()
        pipeline = [[i] for i in range(5000)]  # a pipeline pushed after start-up
        garbage = _Node()
        garbage.me = garbage  # a cycle: only the collector frees it
        dropped = weakref.ref(garbage)
        del garbage
        before = freezer.frozen
        freezer.settle()
        assert freezer.frozen >= before + len(pipeline)
        walked = {id(o) for o in gc.get_objects()}
        assert not any(id(t) in walked for t in pipeline)
        assert dropped() is None  # collected first, not frozen for ever
        await asyncio.sleep(0)
        assert freezer.freezes == 2  # install, settle: its own collection asks for no other
        gc.collect(2)  # the hook still watches full collections
        await asyncio.sleep(0)
        assert freezer.freezes == 3
    finally:
        freezer.remove()
        gc.unfreeze()


class _Node:
    me: object
