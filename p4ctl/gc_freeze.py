"""Keep the cyclic garbage collector's pauses in proportion to what changed.

CPython's collector stops the process while it walks every container object
of the generation it collects. A full (generation 2) collection walks the
whole heap: about 200 ms with 512k flow entries in the store, and tens of
milliseconds just for what start-up leaves behind (protobuf descriptors,
grpc, the P4Info index, a compiled pipeline). Every packet and digest that
arrives during that walk waits, which is what a first-packet latency p99
sees.

The objects that survive a full collection are, almost all, long-lived:
flow records, table entries, the pipeline. :class:`GcFreezer` moves them to
the permanent generation (``gc.freeze()``) once at start-up and again after
every full collection, so the next full collection walks only the objects
created since the last one. Reference counting still frees frozen objects
as soon as nothing refers to them; only a *cycle* of frozen objects is never
reclaimed, so long-lived records must not keep cycles after they are
dropped (the flow store breaks the forward/reverse partner cycle on
removal).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["GcFreezer"]


class GcFreezer:
    """Freezes the survivors of start-up and of each full collection (one per process)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self.freezes = 0
        self._installed = False

    def install(self) -> None:
        """Freeze what start-up created and watch for full collections."""
        if self._installed:
            return
        self._loop = self._loop or asyncio.get_running_loop()
        self._installed = True
        gc.callbacks.append(self._on_gc)
        self._freeze()

    def settle(self) -> None:
        """Collect, then freeze what is left: after a second wave of long-lived objects.

        A pipeline a controller installs after start-up brings tens of
        thousands of objects the start-up freeze never saw. Left young, they
        are walked by every young collection until they are promoted, then by
        the first full collection: on the software switch the first packets
        and one burst a little later each waited about 10 ms. One collection
        now, while the controller waits for the pipeline anyway, avoids both.
        """
        if not self._installed:
            return
        start = time.perf_counter()
        # the freeze follows at once: no second one from the full-collection hook
        gc.callbacks.remove(self._on_gc)
        try:
            gc.collect()
        finally:
            gc.callbacks.append(self._on_gc)
        self._freeze()
        log.info("collected and froze long-lived objects in %.0f ms: %d in the permanent "
                 "generation", (time.perf_counter() - start) * 1000, gc.get_freeze_count())

    def remove(self) -> None:
        """Stop watching; frozen objects stay frozen."""
        if self._installed:
            gc.callbacks.remove(self._on_gc)
            self._installed = False

    @property
    def frozen(self) -> int:
        """Objects in the permanent generation now."""
        return gc.get_freeze_count()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # Called inside the collector, in whichever thread triggered it: only
        # schedule the freeze there.
        if phase == "stop" and info.get("generation") == 2 and self._loop is not None:
            # a closed loop has nothing left to protect
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._freeze)

    def _freeze(self) -> None:
        if not self._installed:
            return
        gc.freeze()
        self.freezes += 1
        log.debug("froze long-lived objects: %d in the permanent generation", gc.get_freeze_count())
