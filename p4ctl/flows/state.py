"""Flow entry states and the transitions between them (ONOS FlowEntryState).

The controller's copy is authoritative; the state says how far the switch has
caught up with it:

- ``PENDING_ADD``: the controller wants the entry on the switch; not yet confirmed.
- ``ADDED``: the switch acknowledged the write (and read-back has not shown otherwise).
- ``PENDING_REMOVE``: the controller wants it gone; the delete is not yet confirmed.
- ``REMOVED``: confirmed gone; the record leaves the store and its slot is free.
- ``FAILED``: the switch rejected the write; ``reason`` says why.

Only the transitions in :data:`LEGAL` are allowed; anything else is a bug in
the caller and raises :class:`IllegalTransition` rather than corrupting the
store silently.
"""

from __future__ import annotations

from enum import IntEnum


class FlowState(IntEnum):
    PENDING_ADD = 0
    ADDED = 1
    PENDING_REMOVE = 2
    REMOVED = 3
    FAILED = 4


S = FlowState

#: states of a record whose entries are on the switch, or on their way on or off
LIVE: frozenset[FlowState] = frozenset({S.PENDING_ADD, S.ADDED, S.PENDING_REMOVE})

#: state -> states it may move to.
LEGAL: dict[FlowState, frozenset[FlowState]] = {
    # confirmed, rejected, or withdrawn before the switch confirmed it
    S.PENDING_ADD: frozenset({S.ADDED, S.FAILED, S.PENDING_REMOVE}),
    # removal asked for (aging, eviction, operator), or the switch lost it
    # and it is being reinstalled (reconciliation)
    S.ADDED: frozenset({S.PENDING_REMOVE, S.PENDING_ADD}),
    # delete confirmed (NOT_FOUND counts as gone), or the delete was rejected
    S.PENDING_REMOVE: frozenset({S.REMOVED, S.FAILED}),
    # terminal: the record is dropped
    S.REMOVED: frozenset(),
    # retried, cleaned up, or dropped
    S.FAILED: frozenset({S.PENDING_ADD, S.PENDING_REMOVE, S.REMOVED}),
}


class IllegalTransition(RuntimeError):
    """A state change that the state machine does not allow."""

    def __init__(self, old: FlowState, new: FlowState) -> None:
        super().__init__(f"illegal flow state transition {old.name} -> {new.name}")
        self.old = old
        self.new = new


def check_transition(old: FlowState, new: FlowState) -> None:
    if new not in LEGAL[old]:
        raise IllegalTransition(old, new)
