"""The software switch: a BMv2 JSON interpreter plus the servers around it.

The interpreter (``pipeline``, ``state``, ``interp``) executes the BMv2 JSON
that p4c produced for the P4 program; see ``pipeline.Pipeline``.
"""

from p4ctl.switch.pipeline import Pipeline, ProcessResult
from p4ctl.switch.state import (
    ActionInfo,
    CounterArray,
    DigestInfo,
    DuplicateEntryError,
    InvalidEntryError,
    MatchFieldInfo,
    NotFoundError,
    PipelineError,
    RegisterArray,
    StateError,
    Table,
    TableEntry,
    TableFullError,
)

__all__ = [
    "ActionInfo",
    "CounterArray",
    "DigestInfo",
    "DuplicateEntryError",
    "InvalidEntryError",
    "MatchFieldInfo",
    "NotFoundError",
    "Pipeline",
    "PipelineError",
    "ProcessResult",
    "RegisterArray",
    "StateError",
    "Table",
    "TableEntry",
    "TableFullError",
]
