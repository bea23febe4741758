"""The compiled program: a BMv2 JSON turned into control-plane state and a packet path.

``Pipeline.from_json`` reads the JSON once (``interp.loader``), lays out the
headers (``interp.headers``), builds the control-plane objects
(``interp.metadata``: tables, actions, registers, counters, digests) and then
compiles the parser, controls, checksums and deparser into Python closures
(``interp.program``), so ``process`` does no JSON look-up per packet.

The packet flow is simple_switch's (behavioral-model
``targets/simple_switch/simple_switch.cpp``): see ``interp.program``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p4ctl.switch.interp.headers import Layout
from p4ctl.switch.interp.loader import load_document
from p4ctl.switch.interp.metadata import Metadata
from p4ctl.switch.interp.program import Program
from p4ctl.switch.interp.runtime import ProcessResult
from p4ctl.switch.state import (
    ActionInfo,
    CounterArray,
    DigestInfo,
    MatchFieldInfo,
    PipelineError,
    RegisterArray,
    Table,
)

__all__ = [
    "ActionInfo",
    "DigestInfo",
    "MatchFieldInfo",
    "Pipeline",
    "PipelineError",
    "ProcessResult",
]


class Pipeline:
    """One loaded P4 program: its state (tables, registers, ...) and its packet path."""

    tables: dict[str, Table]
    actions: dict[str, ActionInfo]
    registers: dict[str, RegisterArray]
    counters: dict[str, CounterArray]
    direct_counters: dict[str, str]
    digests: dict[str, DigestInfo]

    def __init__(self, doc: dict[str, Any], layout: Layout, md: Metadata, program: Program) -> None:
        self.doc = doc
        self.layout = layout
        self._md = md
        self.tables = md.tables
        self.actions = md.actions
        self.registers = md.registers
        self.counters = md.counters
        self.direct_counters = md.direct_counters
        self.digests = md.digests
        self._program = program
        self._process: Callable[[bytes, int, int | None], ProcessResult] = program.process
        #: Clone (mirror) sessions: session id -> [(egress_port, rid)], as PI configures them.
        self.mirror_sessions: dict[int, list[tuple[int, int]]] = program.mirror_sessions
        #: Multicast groups: group id -> [(egress_port, rid)] (simple_switch's PRE).
        self.multicast_groups: dict[int, list[tuple[int, int]]] = program.multicast_groups
        #: The random source of ``random()`` (modify_field_rng_uniform); seed it in tests.
        self.rng = program.rng

    @classmethod
    def from_json(cls, doc: dict | str | bytes) -> Pipeline:
        """Compile a BMv2 JSON (p4c-bm2-ss output); PipelineError if it cannot run here."""
        d = load_document(doc)
        try:
            layout = Layout(d)
            md = Metadata.build(d, layout)
            program = Program(d, layout, md)
        except PipelineError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:
            raise PipelineError(f"malformed BMv2 JSON: {exc!r}") from None
        return cls(d, layout, md, program)

    def process(self, packet: bytes, ingress_port: int, now_us: int | None = None) -> ProcessResult:
        """Run one packet through parser, ingress, egress and deparser.

        ``now_us``: the switch clock in microseconds (ingress/egress global
        timestamps); by default, microseconds since the pipeline was loaded.
        """
        return self._process(packet, ingress_port, now_us)

    def reset_state(self) -> None:
        """Empty the tables (const entries stay), restore defaults, zero registers/counters."""
        for t in self.tables.values():
            t.clear()
            t.reset_default()
        for r in self.registers.values():
            r.reset()
        for c in self.counters.values():
            c.reset()
        self.mirror_sessions.clear()
        self.multicast_groups.clear()
