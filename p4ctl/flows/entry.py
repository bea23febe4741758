"""The flow entry record and its action.

A store of 512k entries must fit comfortably, so the hot record is a slotted
dataclass holding the key as one packed integer (see :meth:`FlowKey.packed`)
and sharing its action object with every other flow that has the same action
(forward to port 2 is one object, not 512k).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from p4ctl.flows.key import FlowKey
from p4ctl.flows.state import FlowState, check_transition


class ActionKind(IntEnum):
    FORWARD = 1
    DROP = 2
    NAT = 3


@dataclass(slots=True, frozen=True)
class FlowAction:
    """What the switch does with a flow's packets.

    For NAT the four fields are the packet's values after translation (the
    data plane rewrites all four; an untranslated field keeps its value).
    """

    kind: ActionKind
    port: int = 0
    nat_src_addr: int = 0
    nat_dst_addr: int = 0
    nat_src_port: int = 0
    nat_dst_port: int = 0

    def __str__(self) -> str:
        if self.kind is ActionKind.DROP:
            return "drop"
        if self.kind is ActionKind.FORWARD:
            return f"forward({self.port})"
        nat = FlowKey(0, self.nat_src_addr, self.nat_dst_addr, 0, self.nat_src_port,
                      self.nat_dst_port)
        return f"nat({self.port}, {str(nat).split(' ', 2)[2].rsplit(' proto', 1)[0]})"


DROP = FlowAction(ActionKind.DROP)

class ActionInterner:
    """Hands out one shared :class:`FlowAction` per distinct action.

    Forward and drop actions repeat across most flows; interning them keeps a
    512k-entry store from holding 512k equal objects. Owned by the store.
    """

    __slots__ = ("_actions", "_shared")

    def __init__(self) -> None:
        self._actions: dict[FlowAction, FlowAction] = {DROP: DROP}
        # ids of the shared objects (alive as long as this interner): policy
        # hands out the same action object for every flow of a rule, so most
        # calls end here without hashing the action's fields
        self._shared = {id(DROP)}

    def intern(self, action: FlowAction) -> FlowAction:
        if id(action) in self._shared:
            return action
        if action.kind is ActionKind.NAT:
            return action  # per-flow values: sharing would only grow the table
        shared = self._actions.setdefault(action, action)
        self._shared.add(id(shared))
        return shared

    def forward(self, port: int) -> FlowAction:
        return self.intern(FlowAction(ActionKind.FORWARD, port))


@dataclass(slots=True, eq=False)
class FlowEntry:
    """One direction of a session, as the controller wants it on the switch.

    ``flow_id`` is the slot index: below the main table size it is a main
    table entry, at or above it an overflow slot. ``partner`` is the other
    direction of the same session (``None`` for a lone entry).
    """

    key: int
    flow_id: int
    action: FlowAction
    state: FlowState = FlowState.PENDING_ADD
    partner: FlowEntry | None = None
    in_port: int = 0
    forward: bool = True
    changed: float = 0.0
    last_hit: float = 0.0
    packets: int = 0
    bytes: int = 0
    tcp_state: int = 0
    reason: str | None = None

    @property
    def flow_key(self) -> FlowKey:
        return FlowKey.unpack(self.key)

    def move(self, new: FlowState, now: float, reason: str | None = None) -> FlowState:
        """Change state after checking the transition is legal; return the old state."""
        old = self.state
        check_transition(old, new)
        self.state = new
        self.changed = now
        self.reason = reason
        return old

    def __repr__(self) -> str:
        return (
            f"FlowEntry({self.flow_key}, id={self.flow_id}, {self.action}, "
            f"{self.state.name}{', ' + self.reason if self.reason else ''})"
        )
