"""Digest lists on the stream: BMv2's learn engine followed by PI's digest manager.

A digest on ``simple_switch_grpc`` goes through two stages, and this module
keeps both, with their timing, so a controller meets here what it meets on
BMv2 (``docs/software-switch.md`` summarises the consequences):

1. **BMv2's learn list** (p4lang/behavioral-model ``src/bm_sim/learning.cpp``,
   ``PI/src/pi_learn_imp.cpp``). Samples are buffered, a sample equal to one
   already in the buffer is dropped, and the buffer is handed on when it
   holds ``max_samples`` samples or ``timeout`` after its first sample. A
   list starts with 16 samples / 1000 ms (``P4Objects.cpp``); a
   ``DigestEntry`` sets ``max_samples = max_list_size`` (1024 when 0) and
   ``timeout = max_timeout_ns / 1e6`` milliseconds, truncated; a timeout of
   0 ms means "no timeout": the buffer waits until it is full. PI
   acknowledges every buffer at once, so this stage never holds samples
   back for the controller's acks. Deleting the ``DigestEntry`` does not
   touch this stage (PI relies on stage 2 to drop).
2. **PI's DigestMgr** (p4lang/PI ``proto/frontend/src/digest_mgr.cpp``).
   Without a ``DigestEntry`` every sample is dropped. With one:

   * if ``ack_timeout_ns > 0``, a sample equal to one in the cache (buffered
     or sent and not yet acknowledged) is suppressed; the cache entries of a
     list leave on a ``DigestListAck`` with its ``digest_id`` and
     ``list_id``, or through the ack sweep;
   * the list being built is sent when it holds ``max_list_size`` cached
     samples (only counted when the cache is on) or at once when
     ``max_timeout_ns`` is 0, otherwise by the timeout sweep;
   * both sweeps run every ``max(T, 100 ms)`` and act on their *second* visit
     (a flag set on the first), so a list leaves between T and 2T after its
     first sample and a cache entry expires between T and 2T after sending.

A list sent while no client is primary is lost, as on PI. Lists are numbered
from 1 per digest; deleting the ``DigestEntry`` does not restart the numbers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from p4.v1 import p4data_pb2, p4runtime_pb2

from p4ctl.p4rt.p4data import bitstring_member_head
from p4ctl.p4rt.wire import LEN, field_number, tag, varint
from p4ctl.switch.codec import Code, P4RuntimeError, int_to_bytes
from p4ctl.switch.p4info_map import DigestMap

log = logging.getLogger(__name__)

__all__ = ["DigestEngine"]

#: BMv2 learn list defaults from ``P4Objects.cpp`` (``list_create(id, name, 16)``).
BMV2_DEFAULT_MAX_SAMPLES = 16
BMV2_DEFAULT_TIMEOUT_MS = 1000
#: PI clamps both sweep periods to at least 100 ms (``digest_mgr.cpp``).
PI_MIN_SWEEP_NS = 100_000_000

Sample = tuple[int, ...]
Send = Callable[[p4runtime_pb2.StreamMessageResponse], None]


class _LearnList:
    """BMv2's learn list for one digest (stage 1)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[list[Sample]], None]):
        self._loop = loop
        self._deliver = deliver
        self.max_samples = BMV2_DEFAULT_MAX_SAMPLES
        self.timeout_ms = BMV2_DEFAULT_TIMEOUT_MS
        self._buffer: list[Sample] = []
        self._filter: set[Sample] = set()
        self._timer: asyncio.TimerHandle | None = None
        #: loop time of the buffer's first sample (``buffer_started``)
        self._started = 0.0

    def configure(self, max_samples: int, timeout_ms: int) -> None:
        """``list_set_max_samples`` then ``list_set_timeout``, as PI's BMv2 target calls them.

        Setting the timeout wakes nobody (``learning.cpp``): BMv2's transmit
        thread sees it when it next wakes, at the end of its timed wait or
        when a sample starts a buffer or fills one. A thread in an untimed
        wait (the timeout was 0) so keeps waiting, however long the samples
        of the buffer have waited.
        """
        self.max_samples = max_samples
        if self._buffer and len(self._buffer) >= max_samples:
            self._flush()
        self.timeout_ms = timeout_ms

    def add(self, sample: Sample) -> None:
        if sample in self._filter:
            return
        self._filter.add(sample)
        self._buffer.append(sample)
        if len(self._buffer) == 1 and self.max_samples > 1:
            # the first sample wakes the thread, which waits until the
            # buffer's deadline (if there is a timeout)
            self._started = self._loop.time()
            if self.timeout_ms > 0:
                self._timer = self._loop.call_at(self._deadline(), self._on_timer)
        elif len(self._buffer) >= self.max_samples:
            self._flush()

    def _deadline(self) -> float:
        return self._started + self.timeout_ms / 1000

    def _on_timer(self) -> None:
        """The thread's timed wait ended: it looks at the timeout as it is now."""
        self._timer = None
        if self.timeout_ms <= 0:
            return  # set to 0 meanwhile: an untimed wait, for a full buffer
        if self._loop.time() < self._deadline():  # raised meanwhile: wait on
            self._timer = self._loop.call_at(self._deadline(), self._on_timer)
            return
        self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return
        samples, self._buffer = self._buffer, []
        # PI acknowledges the buffer as soon as it arrives: the filter empties.
        self._filter.clear()
        self._deliver(samples)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._buffer.clear()
        self._filter.clear()


@dataclass(slots=True)
class _SentList:
    samples: list[Sample]
    timeout_bit: bool = False


@dataclass(slots=True)
class _DigestState:
    """PI's ``DigestData`` for one digest (stage 2)."""

    dmap: DigestMap
    learn_list: _LearnList | None = None
    config: p4runtime_pb2.DigestEntry | None = None
    cache: set[Sample] = field(default_factory=set)
    building: list[Sample] = field(default_factory=list)  # samples of the list being built
    building_cached: list[Sample] = field(default_factory=list)
    list_id: int = 1
    sent: dict[int, _SentList] = field(default_factory=dict)
    timeout_bit: bool = False
    max_timeout_timer: asyncio.TimerHandle | None = None
    ack_timeout_timer: asyncio.TimerHandle | None = None


class DigestEngine:
    """Every digest of one pipeline: configuration, buffering, de-duplication, acks."""

    def __init__(
        self,
        digests: dict[int, DigestMap],
        send: Send,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._send = send
        self._by_id: dict[int, _DigestState] = {}
        self._by_name: dict[str, _DigestState] = {}
        self._unknown: set[str] = set()
        #: samples dropped because no DigestEntry enabled their digest
        self.dropped_unconfigured = 0
        #: samples suppressed by the de-duplication cache
        self.suppressed = 0
        for dmap in digests.values():
            state = _DigestState(dmap=dmap)
            state.learn_list = _LearnList(self._loop, self._make_deliver(state))
            self._by_id[dmap.id] = state
            self._by_name[dmap.info.name] = state

    def _make_deliver(self, state: _DigestState) -> Callable[[list[Sample]], None]:
        return lambda samples: self._pi_learn(state, samples)

    # ----- data plane side ---------------------------------------------

    def learn(self, name: str, values: tuple[int, ...]) -> None:
        """A ``generate_digest`` from the pipeline (learn list name, field values)."""
        state = self._by_name.get(name)
        if state is None:
            if name not in self._unknown:
                self._unknown.add(name)
                log.warning("digest %r from the pipeline is not in the P4Info: dropped", name)
            return
        state.learn_list.add(tuple(values))  # type: ignore[union-attr]

    def _pi_learn(self, state: _DigestState, samples: list[Sample]) -> None:
        config = state.config
        if config is None:
            self.dropped_unconfigured += len(samples)
            return
        use_cache = config.config.ack_timeout_ns > 0
        added = False
        for s in samples:
            if use_cache:
                if s in state.cache:
                    self.suppressed += 1
                    continue
                state.cache.add(s)
                state.building_cached.append(s)
            state.building.append(s)
            added = True
        if not added:
            return
        max_list_size = config.config.max_list_size
        if (max_list_size != 0 and len(state.building_cached) >= max_list_size) or (
            config.config.max_timeout_ns == 0
        ):
            self._send_list(state)

    def _send_list(self, state: _DigestState) -> None:
        dmap = state.dmap
        msg = p4runtime_pb2.StreamMessageResponse()
        dl = msg.digest
        dl.digest_id = dmap.id
        dl.list_id = state.list_id
        dl.MergeFromString(_encode_data(dmap, state.building))
        dl.timestamp = time.monotonic_ns()
        self._send(msg)
        state.timeout_bit = False
        if state.building_cached:
            state.sent[state.list_id] = _SentList(state.building_cached)
        state.building = []
        state.building_cached = []
        state.list_id += 1

    # ----- control plane side ------------------------------------------

    def config_write(self, entry: p4runtime_pb2.DigestEntry, update_type: int) -> None:
        state = self._by_id.get(entry.digest_id)
        if state is None:
            raise P4RuntimeError(Code.NOT_FOUND, f"{entry.digest_id} is not a valid digest id")
        cfg = entry.config
        if cfg.max_timeout_ns < 0 or cfg.ack_timeout_ns < 0 or cfg.max_list_size < 0:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "DigestEntry config values must be >= 0")
        U = p4runtime_pb2.Update
        if update_type == U.INSERT:
            if state.config is not None:
                raise P4RuntimeError(
                    Code.ALREADY_EXISTS, f"Digest {entry.digest_id} already configured"
                )
        elif update_type in (U.MODIFY, U.DELETE):
            if state.config is None:
                raise P4RuntimeError(Code.NOT_FOUND, f"Digest {entry.digest_id} not configured")
        else:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Invalid update type for DigestEntry")
        if update_type == U.DELETE:
            self._reset(state)
            return
        state.config = p4runtime_pb2.DigestEntry()
        state.config.CopyFrom(entry)
        self._schedule_sweeps(state)
        max_samples = cfg.max_list_size or 1024
        timeout_ms = int(cfg.max_timeout_ns / 1_000_000.0)
        state.learn_list.configure(max_samples, timeout_ms)  # type: ignore[union-attr]

    def config_read(self, digest_id: int) -> p4runtime_pb2.DigestEntry:
        if digest_id == 0:
            raise P4RuntimeError(
                Code.UNIMPLEMENTED, "digest_id must be set when reading DigestEntry"
            )
        state = self._by_id.get(digest_id)
        if state is None:
            raise P4RuntimeError(Code.NOT_FOUND, f"{digest_id} is not a valid digest id")
        if state.config is None:
            raise P4RuntimeError(Code.NOT_FOUND, f"Digest {digest_id} not configured")
        out = p4runtime_pb2.DigestEntry()
        out.CopyFrom(state.config)
        return out

    def ack(self, digest_id: int, list_id: int) -> None:
        """A ``DigestListAck``; unknown digests and lists are ignored, as in PI."""
        state = self._by_id.get(digest_id)
        if state is None:
            return
        sent = state.sent.pop(list_id, None)
        if sent is not None:
            state.cache.difference_update(sent.samples)

    def configured(self) -> list[int]:
        return [d for d, s in self._by_id.items() if s.config is not None]

    def close(self) -> None:
        for state in self._by_id.values():
            self._cancel_sweeps(state)
            if state.learn_list is not None:
                state.learn_list.close()

    # ----- sweeps ------------------------------------------------------------

    def _reset(self, state: _DigestState) -> None:
        self._cancel_sweeps(state)
        state.config = None
        state.cache.clear()
        state.sent.clear()
        state.building = []
        state.building_cached = []
        state.timeout_bit = False

    def _cancel_sweeps(self, state: _DigestState) -> None:
        for attr in ("max_timeout_timer", "ack_timeout_timer"):
            handle = getattr(state, attr)
            if handle is not None:
                handle.cancel()
                setattr(state, attr, None)

    def _schedule_sweeps(self, state: _DigestState) -> None:
        self._cancel_sweeps(state)
        assert state.config is not None
        cfg = state.config.config
        if cfg.max_timeout_ns:
            period = max(cfg.max_timeout_ns, PI_MIN_SWEEP_NS) / 1e9
            self._periodic(state, "max_timeout_timer", period, self._timeout_sweep)
        if cfg.ack_timeout_ns:
            period = max(cfg.ack_timeout_ns, PI_MIN_SWEEP_NS) / 1e9
            self._periodic(state, "ack_timeout_timer", period, self._ack_sweep)

    def _periodic(
        self,
        state: _DigestState,
        attr: str,
        period: float,
        fn: Callable[[_DigestState], None],
    ) -> None:
        start = self._loop.time()

        def tick(n: int) -> None:
            fn(state)
            # Fixed rate, as PI's task queue schedules periodic tasks.
            setattr(state, attr, self._loop.call_at(start + (n + 1) * period, tick, n + 1))

        setattr(state, attr, self._loop.call_at(start + period, tick, 1))

    def _timeout_sweep(self, state: _DigestState) -> None:
        if not state.building:
            return
        if not state.timeout_bit:
            state.timeout_bit = True
            return
        self._send_list(state)

    def _ack_sweep(self, state: _DigestState) -> None:
        for list_id in list(state.sent):
            sent = state.sent[list_id]
            if not sent.timeout_bit:
                sent.timeout_bit = True
                continue
            state.cache.difference_update(sent.samples)
            del state.sent[list_id]


_P4DATA = p4data_pb2.P4Data.DESCRIPTOR
_DATA_TAG = tag(field_number(p4runtime_pb2.DigestList.DESCRIPTOR, "data"), LEN)
_BITSTRING_TAG = tag(field_number(_P4DATA, "bitstring"), LEN)
_FORM_TAGS = {kind: tag(field_number(_P4DATA, kind), LEN) for kind in ("struct", "tuple")}
#: framing of a member by value length, for the lengths digests carry
_MEMBER_HEADS = [bitstring_member_head(n) for n in range(64)]


def _encode_data(dmap: DigestMap, samples: list[Sample]) -> bytes:
    """The serialized ``data`` fields of a DigestList, one P4Data per sample.

    Spliced from framing prepared once rather than built member by member
    through the protobuf runtime, which makes a Python object per member:
    a digest list is sent for every batch of new flows, so this is on the
    switch's busiest path. Values are the canonical (shortest) bytes.
    """
    masks = [(1 << w) - 1 for w in dmap.widths]
    heads = _MEMBER_HEADS
    out = []
    if dmap.kind == "bitstring":
        for sample in samples:
            value = int_to_bytes(sample[0] & masks[0])
            data = _BITSTRING_TAG + varint(len(value)) + value
            out.append(_DATA_TAG + varint(len(data)) + data)
        return b"".join(out)
    form = _FORM_TAGS[dmap.kind]
    for sample in samples:
        members = []
        for value, mask in zip(sample, masks, strict=False):
            raw = int_to_bytes(value & mask)
            members.append(heads[len(raw)] + raw if len(raw) < 64 else
                           bitstring_member_head(len(raw)) + raw)
        body = b"".join(members)
        data = form + varint(len(body)) + body
        out.append(_DATA_TAG + varint(len(data)) + data)
    return b"".join(out)
