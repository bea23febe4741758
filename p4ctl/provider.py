"""Applies flow operations on one device (ONOS's FlowRuleProvider).

The batch executor (:mod:`p4ctl.flows.batch`) hands a stage of add / modify
/ remove operations here. Main-table entries become one batched P4Runtime
Write (the client splits it under the message limit); overflow slots become
register writes through the device's register backend (P4Runtime
``RegisterEntry`` or BMv2's Thrift API), in two steps so the data plane never
matches a half-written slot: key and action first, the valid bit last; on
removal the valid bit is cleared. Both kinds run concurrently.

After a confirmed removal the slot's TCP state register is cleared, so the
next flow given that flow id starts with no flags (and its own FIN still
raises a flow event).

The answers are per operation: a switch that rejects one entry does not
hide that the others were written. An add the switch answers ALREADY_EXISTS
is a modify at once: the switch holds an entry with that key that the store
does not hold live (one whose write's answer was lost, one a replay finds
kept, one of an earlier controller), and the store's is the entry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from p4.v1 import p4runtime_pb2

from p4ctl.flows.batch import FlowOp, OpKind, OpResult
from p4ctl.flows.key import FlowKey
from p4ctl.flows.store import FlowStore
from p4ctl.p4rt.client import P4RuntimeClient
from p4ctl.p4rt.errors import ErrorKind, P4RuntimeError
from p4ctl.p4rt.registers import RegisterBackend, RegisterError
from p4ctl.pipeline import FlowMapping

log = logging.getLogger(__name__)

_UPDATE_TYPE = {
    OpKind.ADD: p4runtime_pb2.Update.INSERT,
    OpKind.MODIFY: p4runtime_pb2.Update.MODIFY,
    OpKind.REMOVE: p4runtime_pb2.Update.DELETE,
}


class SwitchFlowProvider:
    """Writes flow entries of one store to one device."""

    def __init__(
        self,
        client: P4RuntimeClient,
        mapping: FlowMapping,
        registers: RegisterBackend,
        store: FlowStore,
        idle_timeout_ns: Callable[[int, int, int], int],
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.registers = registers
        self.store = store
        #: an entry's TTL from its (proto, src_port, dst_port)
        self.idle_timeout_ns = idle_timeout_ns

    async def apply(self, ops: Sequence[FlowOp]) -> list[OpResult]:
        results: list[OpResult | None] = [None] * len(ops)
        main: list[int] = []
        overflow: list[int] = []
        for i, op in enumerate(ops):
            (overflow if self.store.is_overflow(op.entry) else main).append(i)
        if main and overflow:
            await asyncio.gather(
                self._apply_main(ops, main, results), self._apply_overflow(ops, overflow, results)
            )
        elif main:  # the usual case: no tasks to make for gather, one step less per round
            await self._apply_main(ops, main, results)
        else:
            await self._apply_overflow(ops, overflow, results)
        done = [r for r in results if r is not None]
        assert len(done) == len(ops)
        # the store frees these slots: their flags must not pass to the next flow
        removed = [r.op.entry.flow_id for r in done if r.removed]
        if removed:
            await self.clear_state(removed)
        return done

    async def _apply_main(
        self, ops: Sequence[FlowOp], indexes: list[int], results: list[OpResult | None]
    ) -> None:
        if not indexes:
            return
        encoder = self.mapping.encoder
        update, entry_of, key_of = encoder.update, encoder.entry, encoder.key_entry
        idle_timeout_ns, l4_of = self.idle_timeout_ns, FlowKey.l4_of
        updates: list[bytes] = []
        for i in indexes:
            op = ops[i]
            entry = op.entry
            if op.kind is OpKind.REMOVE:
                updates.append(update(_UPDATE_TYPE[op.kind], key_of(entry.key)))
            else:
                updates.append(update(_UPDATE_TYPE[op.kind], entry_of(
                    entry.key, entry.flow_id, entry.action, idle_timeout_ns(*l4_of(entry.key)))))
        try:
            written = await self.client.write(updates)
        except P4RuntimeError as exc:
            for i in indexes:
                results[i] = OpResult(ops[i], False, exc.code.name, exc.message)
            return
        there: list[int] = []
        for i, status in zip(indexes, written.statuses, strict=True):
            if status.kind is ErrorKind.ALREADY_EXISTS and ops[i].kind is OpKind.ADD:
                there.append(i)
            else:
                results[i] = (
                    OpResult(ops[i], True) if status.ok
                    else OpResult(ops[i], False, status.code.name, status.message)
                )
        if there:
            # The switch holds an entry with this key that the store does not
            # hold live: one whose write's answer was lost, one a replay finds
            # kept, one of a controller before. The store's is the entry.
            modified: list[OpResult | None] = [None] * len(there)
            await self._apply_main([FlowOp(OpKind.MODIFY, ops[i].entry) for i in there],
                                   list(range(len(there))), modified)
            for i, r in zip(there, modified, strict=True):
                assert r is not None
                if r.ok or r.code == "NOT_FOUND":  # NOT_FOUND: gone meanwhile after all
                    results[i] = OpResult(ops[i], r.ok, r.code, r.message)
                else:  # the entry is there, maybe with this flow id: its slot stays taken
                    results[i] = OpResult(ops[i], False, "ALREADY_EXISTS",
                                          f"modify refused: {r.code}: {r.message}")

    async def _apply_overflow(
        self, ops: Sequence[FlowOp], indexes: list[int], results: list[OpResult | None]
    ) -> None:
        if not indexes:
            return
        mapping = self.mapping
        store = self.store
        data: list[tuple[str, int, int]] = []
        valid: list[tuple[str, int, int]] = []
        for i in indexes:
            entry = ops[i].entry
            slot = store.overflow_index(entry)
            if ops[i].kind is OpKind.REMOVE:
                valid.extend(mapping.overflow_remove(slot))
            else:
                first, last = mapping.overflow_install(entry.flow_key, slot, entry.action)
                data.extend(first)
                valid.extend(last)
        try:
            if data:
                await self.registers.write_many(data)
            await self.registers.write_many(valid)
        except (RegisterError, P4RuntimeError) as exc:
            log.warning("overflow register write failed: %s", exc)
            for i in indexes:
                results[i] = OpResult(ops[i], False, "UNKNOWN", f"overflow registers: {exc}")
            return
        for i in indexes:
            results[i] = OpResult(ops[i], True)

    async def clear_state(self, flow_ids: list[int]) -> None:
        """Zero the TCP state register of slots given up (logged, not raised, on failure)."""
        name = self.mapping.registers["tcp_state"]
        try:
            await self.registers.write_many((name, flow_id, 0) for flow_id in flow_ids)
        except (RegisterError, P4RuntimeError) as exc:
            # Not fatal: a stale flag only costs the next flow of the slot its
            # first flow event (a read-back reconciler, once built, would
            # clear the state of free slots).
            log.warning("could not clear the TCP state of %d slots: %s", len(flow_ids), exc)
