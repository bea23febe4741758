"""The P4Runtime semantics of one device: pipeline config, Write, Read, packet I/O.

This is the software switch's counterpart of PI's ``DeviceMgr``
(p4lang/PI ``proto/frontend/src/device_mgr.cpp``) on top of BMv2: the same
checks in the same order, the same canonical codes and, where a client can
read it, the same messages. The gRPC layer (:mod:`p4ctl.switch.p4runtime_server`)
handles arbitration and turns :class:`P4RuntimeError` into statuses.

Where this module departs from PI/BMv2 it says so next to the code, and
``docs/software-switch.md`` lists every case. The main ones a controller
meets on ``simple_switch_grpc`` as well:

* a full table answers ``UNKNOWN`` "Error when adding match entry to target"
  (BMv2 reports a generic target error), not ``RESOURCE_EXHAUSTED``;
* only ``CONTINUE_ON_ERROR`` batches (others: ``UNIMPLEMENTED`` for the RPC);
* ``RegisterEntry`` answers ``UNIMPLEMENTED`` on BMv2; here it works (single
  index and wildcard, spec rules) unless ``registers_via_p4runtime=False``;
* a wildcard ``CounterEntry`` write is ``UNIMPLEMENTED`` (PI);
* ``time_since_last_hit`` is 0 for entries without TTL (PI).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from p4.config.v1 import p4info_pb2
from p4.v1 import p4runtime_pb2

from p4ctl.switch.codec import Code, P4RuntimeError, bytes_to_int, int_to_bytes
from p4ctl.switch.digests import DigestEngine
from p4ctl.switch.exact_writes import ExactTableWrites, Plain
from p4ctl.switch.idle import IdleMonitor, time_since_last_hit_ns
from p4ctl.switch.p4info_map import (
    PREFIX_ACTION,
    PREFIX_ACTION_PROFILE,
    PREFIX_COUNTER,
    PREFIX_METER,
    PREFIX_REGISTER,
    PREFIX_TABLE,
    SCOPE,
    UNIT,
    P4InfoMap,
    P4InfoMismatch,
    TableMap,
)
from p4ctl.switch.packet_io import PacketInCodec, PacketOutCodec
from p4ctl.switch.state import (
    DuplicateEntryError,
    InvalidEntryError,
    NotFoundError,
    TableEntry,
    TableFullError,
)
from p4ctl.switch.table_codec import action_to_proto, build_action_args, build_key, key_to_proto
from p4ctl.switch.write_request import ReceivedWrite

log = logging.getLogger(__name__)

__all__ = ["DeviceMgr", "load_pipeline"]

class U:
    """Update types as plain ints (protobuf enum wrappers are slow on the write path)."""

    UNSPECIFIED = p4runtime_pb2.Update.UNSPECIFIED
    INSERT = p4runtime_pb2.Update.INSERT
    MODIFY = p4runtime_pb2.Update.MODIFY
    DELETE = p4runtime_pb2.Update.DELETE
    Type = p4runtime_pb2.Update.Type


_TABLE_ONLY = SCOPE.TABLE_ONLY
_DEFAULT_ONLY = SCOPE.DEFAULT_ONLY
_COUNTS_PACKETS = (UNIT.PACKETS, UNIT.BOTH)
_COUNTS_BYTES = (UNIT.BYTES, UNIT.BOTH)

SetAction = p4runtime_pb2.SetForwardingPipelineConfigRequest
GetType = p4runtime_pb2.GetForwardingPipelineConfigRequest
Send = Callable[[p4runtime_pb2.StreamMessageResponse], None]


def _invalid_id() -> P4RuntimeError:
    return P4RuntimeError(Code.INVALID_ARGUMENT, "Invalid P4 id")


def load_pipeline(device_config: bytes):
    """Compile a BMv2 JSON device config with the interpreter."""
    from p4ctl.switch.pipeline import Pipeline

    return Pipeline.from_json(device_config)


@dataclass(slots=True)
class _DefaultEntryData:
    """What PI keeps for a default entry besides the action (``TableInfoStore``)."""

    controller_metadata: int = 0
    metadata: bytes = b""


@dataclass(slots=True)
class _Config:
    """One forwarding pipeline: what the client sent and what it compiled to."""

    p4info: p4info_pb2.P4Info
    device_config: bytes
    cookie: p4runtime_pb2.ForwardingPipelineConfig.Cookie | None
    pipeline: object
    pmap: P4InfoMap
    #: the write fast path for its all-exact tables
    exact_writes: ExactTableWrites


class DeviceMgr:
    """The state and P4Runtime operations of one device."""

    def __init__(
        self,
        device_id: int,
        send: Send,
        *,
        registers_via_p4runtime: bool = True,
        idle_sweep_interval: float = 1.0,
        loop: asyncio.AbstractEventLoop | None = None,
        fast_writes: bool = True,
    ) -> None:
        """``fast_writes``: serve plain INSERTs and DELETEs of all-exact tables
        by :class:`ExactTableWrites`; False sends every update down PI's
        general path (the reference the fast path is tested against)."""
        self.device_id = device_id
        self.fast_writes = fast_writes
        self._send = send
        self.registers_via_p4runtime = registers_via_p4runtime
        self._idle_sweep_interval = idle_sweep_interval
        self._loop = loop
        #: the config the P4Runtime service reads and writes
        self._config: _Config | None = None
        #: the pipeline processing packets (differs from the config's after a
        #: VERIFY_AND_SAVE until the COMMIT)
        self._active: object | None = None
        self._pending_commit = False
        self._defaults: dict[int, _DefaultEntryData] = {}
        self.digests: DigestEngine | None = None
        self.idle: IdleMonitor | None = None
        self._packet_in = PacketInCodec(None)
        self._packet_out = PacketOutCodec(None)

    # ----- state ------------------------------------------------------------

    @property
    def has_config(self) -> bool:
        return self._config is not None

    @property
    def pipeline(self) -> object | None:
        """The pipeline processing packets (None before the first commit)."""
        return self._active

    @property
    def runtime_pipeline(self) -> object | None:
        """The pipeline the control plane reads and writes (BMv2's runtime objects)."""
        return self._config.pipeline if self._config else None

    @property
    def device_config(self) -> bytes:
        return self._config.device_config if self._config else b""

    @property
    def pmap(self) -> P4InfoMap | None:
        return self._config.pmap if self._config else None

    def close(self) -> None:
        self._stop_services()

    def _stop_services(self) -> None:
        if self.digests is not None:
            self.digests.close()
            self.digests = None
        if self.idle is not None:
            self.idle.stop()
            self.idle = None

    # ----- data plane hooks --------------------------------------------------

    def process(self, packet: bytes, port: int) -> list[tuple[int, bytes]]:
        """Run a packet through the active pipeline; its outputs (port, bytes)."""
        pipe = self._active
        if pipe is None:
            return []
        result = pipe.process(packet, port)  # type: ignore[attr-defined]
        if result.digests and self.digests is not None and not self._pending_commit:
            for name, values in result.digests:
                self.digests.learn(name, values)
        return result.outputs

    def packet_in(self, packet: bytes) -> None:
        """A packet the pipeline sent to the CPU port: a PacketIn to the primaries."""
        msg = self._packet_in.decode(packet)
        if msg is None:
            log.debug("packet-in shorter than the packet_in header: dropped")
            return
        out = p4runtime_pb2.StreamMessageResponse()
        out.packet.CopyFrom(msg)
        self._send(out)

    def packet_out(self, msg: p4runtime_pb2.PacketOut) -> bytes:
        """The bytes a PacketOut injects on the CPU port (P4RuntimeError if malformed)."""
        return self._packet_out.encode(msg)

    def digest_ack(self, ack: p4runtime_pb2.DigestListAck) -> None:
        if self.digests is not None:
            self.digests.ack(ack.digest_id, ack.list_id)

    def reset_state(self) -> None:
        """Empty tables, registers and counters, forget digest config (a restart)."""
        if self._config is None:
            return
        pipe = self._config.pipeline
        pipe.reset_state()  # type: ignore[attr-defined]
        if self._active is not None and self._active is not pipe:
            self._active.reset_state()  # type: ignore[attr-defined]
        self._install_services(self._config)

    def drop_config(self) -> None:
        """Forget the forwarding pipeline altogether (a restart without one)."""
        self._stop_services()
        self._config = None
        self._active = None
        self._pending_commit = False
        self._defaults = {}
        self._packet_in = PacketInCodec(None)
        self._packet_out = PacketOutCodec(None)

    # ----- SetForwardingPipelineConfig / GetForwardingPipelineConfig ---------

    def set_pipeline(self, action: int, config: p4runtime_pb2.ForwardingPipelineConfig) -> bool:
        """PI's ``pipeline_config_set`` (see the docs for the departures).

        True when the device changed: everything but a VERIFY that passed
        (a refused config raises and changes nothing).
        """
        if action == SetAction.UNSPECIFIED:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Invalid SetForwardingPipeline action")
        if action not in (
            SetAction.VERIFY,
            SetAction.VERIFY_AND_SAVE,
            SetAction.VERIFY_AND_COMMIT,
            SetAction.COMMIT,
            SetAction.RECONCILE_AND_COMMIT,
        ):
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Invalid SetForwardingPipeline action")
        if action == SetAction.COMMIT:
            if self._config is None or not self._pending_commit:
                raise P4RuntimeError(Code.UNKNOWN, "Error in second phase of device update")
            self._commit()
            return True
        new = self._compile(config)
        if action == SetAction.VERIFY:
            return False
        if action == SetAction.RECONCILE_AND_COMMIT and self._config is not None:
            self._reconcile_into(self._config, new)
        self._p4_change(new)
        if action == SetAction.VERIFY_AND_SAVE:
            self._pending_commit = True
            log.info("forwarding pipeline saved (not committed)")
            return True
        self._commit()
        return True

    def _compile(self, config: p4runtime_pb2.ForwardingPipelineConfig) -> _Config:
        device_config = bytes(config.p4_device_config)
        try:
            doc = json.loads(device_config)
        except (ValueError, RecursionError) as e:  # RecursionError: nested too deep to read
            raise P4RuntimeError(
                Code.UNKNOWN,
                f"Error in first phase of device update: the device config is not BMv2 JSON ({e})",
            ) from None
        try:
            pipeline = load_pipeline(doc)
        except Exception as e:  # PipelineError, or any malformed-JSON surprise
            raise P4RuntimeError(
                Code.UNKNOWN, f"Error in first phase of device update: {e}"
            ) from None
        try:
            pmap = P4InfoMap.build(config.p4info, pipeline)
        except P4InfoMismatch as e:
            raise P4RuntimeError(
                Code.UNKNOWN, f"Error in first phase of device update: {e}"
            ) from None
        cookie = None
        if config.HasField("cookie"):
            cookie = p4runtime_pb2.ForwardingPipelineConfig.Cookie()
            cookie.CopyFrom(config.cookie)
        p4info = p4info_pb2.P4Info()
        p4info.CopyFrom(config.p4info)
        return _Config(p4info, device_config, cookie, pipeline, pmap, ExactTableWrites(pmap))

    def _p4_change(self, new: _Config) -> None:
        """PI's ``p4_change``: the service now reads and writes ``new``."""
        self._config = new
        self._packet_in = PacketInCodec(new.pmap.packet_in)
        self._packet_out = PacketOutCodec(new.pmap.packet_out)
        self._install_services(new)

    def _install_services(self, config: _Config) -> None:
        self._stop_services()
        self._defaults = {tid: _DefaultEntryData() for tid in config.pmap.tables}
        self.digests = DigestEngine(config.pmap.digests, self._send, self._loop)
        self.idle = IdleMonitor(
            list(config.pmap.tables.values()),
            self._send,
            self._loop,
            sweep_interval=self._idle_sweep_interval,
        )
        self.idle.start()

    def _commit(self) -> None:
        assert self._config is not None
        self._active = self._config.pipeline
        self._pending_commit = False
        log.info(
            "forwarding pipeline committed: %d tables, %d digests",
            len(self._config.pmap.tables),
            len(self._config.pmap.digests),
        )

    def _reconcile_into(self, old: _Config, new: _Config) -> None:
        """RECONCILE_AND_COMMIT: replay the old forwarding state into ``new``.

        As PI (``save_forwarding_state``): the table entries (without their
        counters) and the indexed counters are kept; registers, default
        entries and digest configuration are not. Departures: the counters
        are replayed with MODIFY (PI replays them with INSERT, which fails,
        so on PI a program with counters cannot be reconciled), and a failed
        replay leaves the old pipeline in place.
        """
        saved: list[p4runtime_pb2.Entity] = []
        for entity in self._read_entity_list(
            old.pmap,
            [
                p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry()),
                p4runtime_pb2.Entity(counter_entry=p4runtime_pb2.CounterEntry()),
            ],
        ):
            saved.append(entity)
        current = self._config
        self._config = new
        try:
            for entity in saved:
                kind = entity.WhichOneof("entity")
                if kind == "table_entry":
                    self._table_write(U.INSERT, entity.table_entry)
                else:
                    self._counter_write(U.MODIFY, entity.counter_entry)
        except P4RuntimeError as e:
            log.warning("reconcile failed: %s", e)
            raise P4RuntimeError(Code.UNKNOWN, "Error when reconciling config") from None
        finally:
            self._config = current

    def get_pipeline(self, response_type: int) -> p4runtime_pb2.ForwardingPipelineConfig:
        out = p4runtime_pb2.ForwardingPipelineConfig()
        cfg = self._config
        if cfg is None:
            return out
        if response_type == GetType.ALL:
            out.p4info.CopyFrom(cfg.p4info)
            out.p4_device_config = cfg.device_config
        elif response_type == GetType.COOKIE_ONLY:
            pass
        elif response_type == GetType.P4INFO_AND_COOKIE:
            out.p4info.CopyFrom(cfg.p4info)
        elif response_type == GetType.DEVICE_CONFIG_AND_COOKIE:
            out.p4_device_config = cfg.device_config
        else:
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT,
                "Invalid response_type in GetForwardingPipelineConfigRequest",
            )
        if cfg.cookie is not None:
            out.cookie.CopyFrom(cfg.cookie)
        return out

    # ----- Write ----------------------------------------------------------------

    def write(
        self, request: p4runtime_pb2.WriteRequest | ReceivedWrite
    ) -> list[P4RuntimeError | None]:
        """Apply every update; one error (or None) per update, in order.

        A :class:`ReceivedWrite` (the request's bytes as they came) spares
        parsing the updates the fast path reads from those bytes.
        """
        received = request if isinstance(request, ReceivedWrite) else ReceivedWrite.of(request)
        if received.header.atomicity != p4runtime_pb2.WriteRequest.CONTINUE_ON_ERROR:
            raise P4RuntimeError(
                Code.UNIMPLEMENTED, "Support for atomic write modes has not been implemented yet"
            )
        plain: list[Plain | None] | None = None
        if self.fast_writes and self._config is not None and received.spans is not None:
            read, data = self._config.exact_writes.read, received.data
            plain = [read(data, start, end) for start, end in received.spans]
        if plain is None or None in plain:
            # Some update takes the general path: parse the whole request
            # before applying any of it, so a malformed one changes nothing.
            try:
                received.parse()
            except DecodeError as e:
                raise P4RuntimeError(
                    Code.INVALID_ARGUMENT, f"cannot parse the WriteRequest: {e}"
                ) from None
        now = time.monotonic_ns()
        apply = ExactTableWrites.apply
        results: list[P4RuntimeError | None] = []
        for i in range(len(received)):
            try:
                update = plain[i] if plain is not None else None
                if update is None or not apply(update, now, self._forget):
                    self._write_one(received.update(i))
                results.append(None)
            except P4RuntimeError as e:
                results.append(e)
            except Exception as e:  # a bug here must not take the other updates down
                log.exception("update %d failed unexpectedly", i)
                results.append(P4RuntimeError(Code.INTERNAL, f"internal error: {e!r}"))
        return results

    def _forget(self, entry: TableEntry) -> None:
        if self.idle is not None:
            self.idle.forget(entry)

    def _write_one(self, update: p4runtime_pb2.Update) -> None:
        entity = update.entity
        kind = entity.WhichOneof("entity")
        pmap = self._pmap()
        if kind == "table_entry":
            self._table_write(update.type, entity.table_entry)
        elif kind == "counter_entry":
            self._counter_write(update.type, entity.counter_entry)
        elif kind == "direct_counter_entry":
            self._direct_counter_write(update.type, entity.direct_counter_entry)
        elif kind == "register_entry":
            if not self.registers_via_p4runtime:
                raise P4RuntimeError(Code.UNIMPLEMENTED, "Register writes are not supported yet")
            self._register_write(update.type, entity.register_entry)
        elif kind == "digest_entry":
            assert self.digests is not None
            self.digests.config_write(entity.digest_entry, update.type)
        elif kind == "meter_entry":
            self._unsupported(pmap, entity.meter_entry.meter_id, PREFIX_METER, "Meters")
        elif kind == "direct_meter_entry":
            self._unsupported(
                pmap, entity.direct_meter_entry.table_entry.table_id, PREFIX_TABLE, "Direct meters"
            )
        elif kind == "action_profile_member":
            self._unsupported(
                pmap,
                entity.action_profile_member.action_profile_id,
                PREFIX_ACTION_PROFILE,
                "Action profiles",
            )
        elif kind == "action_profile_group":
            self._unsupported(
                pmap,
                entity.action_profile_group.action_profile_id,
                PREFIX_ACTION_PROFILE,
                "Action profiles",
            )
        elif kind == "packet_replication_engine_entry":
            raise P4RuntimeError(
                Code.UNIMPLEMENTED,
                "Packet replication engine entries are not supported by the software switch",
            )
        elif kind == "value_set_entry":
            raise P4RuntimeError(Code.UNIMPLEMENTED, "ValueSet writes are not supported yet")
        elif kind == "extern_entry":
            raise P4RuntimeError(Code.UNIMPLEMENTED, "No extern support yet")
        else:
            raise P4RuntimeError(Code.UNKNOWN, "Incorrect entity type")

    def _pmap(self) -> P4InfoMap:
        if self._config is None:  # the server checks first; kept for direct callers
            raise P4RuntimeError(
                Code.FAILED_PRECONDITION, "No forwarding pipeline config set for this device"
            )
        return self._config.pmap

    @staticmethod
    def _unsupported(pmap: P4InfoMap, p4_id: int, prefix: int, what: str) -> None:
        if p4_id and not pmap.valid_id(p4_id, prefix):
            raise _invalid_id()
        raise P4RuntimeError(Code.UNIMPLEMENTED, f"{what} are not supported by the software switch")

    def _table(self, table_id: int) -> TableMap:
        pmap = self._pmap()
        if not pmap.valid_id(table_id, PREFIX_TABLE):
            raise _invalid_id()
        return pmap.tables[table_id]

    def _table_write(self, utype: int, te: p4runtime_pb2.TableEntry) -> None:
        tm = self._table(te.table_id)
        if te.HasField("time_since_last_hit"):
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT, "has_time_since_last_hit must not be set in WriteRequest"
            )
        if utype == U.INSERT:
            self._table_insert(tm, te)
        elif utype == U.MODIFY:
            self._table_modify(tm, te)
        elif utype == U.DELETE:
            self._table_delete(tm, te)
        elif utype == U.UNSPECIFIED:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Update type is not set")
        else:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Invalid update type")

    def _validate_action(
        self, tm: TableMap, te: p4runtime_pb2.TableEntry
    ) -> p4runtime_pb2.Action | None:
        """PI's ``validate_action``: indirect tables, const defaults, action scopes.

        Returns the entry's direct action (None when it has none), so the
        caller does not look it up again.
        """
        indirect = tm.implementation_id != 0
        if indirect and te.is_default_action:
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT,
                f"Cannot set / reset default action for indirect table {tm.id}",
            )
        if te.is_default_action and tm.const_default_action_id:
            raise P4RuntimeError(
                Code.PERMISSION_DENIED,
                f"Cannot set / reset default action for table {tm.id} which has a const "
                "default action",
            )
        if not te.HasField("action"):
            return None
        table_action = te.action
        kind = table_action.WhichOneof("type")
        if indirect:
            if kind == "action":
                raise P4RuntimeError(
                    Code.INVALID_ARGUMENT,
                    f"Cannot provide direct action for indirect table {tm.id}",
                )
            raise P4RuntimeError(
                Code.UNIMPLEMENTED, "Action profiles are not supported by the software switch"
            )
        if kind != "action":
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT, f"Cannot provide indirect action for direct table {tm.id}"
            )
        action = table_action.action
        action_id = action.action_id
        if not self._pmap().valid_id(action_id, PREFIX_ACTION):
            raise _invalid_id()
        scope = tm.actions.get(action_id)
        if scope is None:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Invalid action for table")
        if scope == _TABLE_ONLY and te.is_default_action:
            raise P4RuntimeError(
                Code.PERMISSION_DENIED, "Cannot use TABLE_ONLY action as default action"
            )
        if scope == _DEFAULT_ONLY and not te.is_default_action:
            raise P4RuntimeError(
                Code.PERMISSION_DENIED, "Cannot use DEFAULT_ONLY action in table entry"
            )
        return action

    def _action(self, action: p4runtime_pb2.Action) -> tuple[str, tuple[int, ...]]:
        am = self._pmap().actions[action.action_id]
        return am.name, build_action_args(am, action)

    def _direct_counter_values(
        self, tm: TableMap, te: p4runtime_pb2.TableEntry
    ) -> p4runtime_pb2.CounterData | None:
        """PI's ``construct_direct_resources`` (meters are not supported here)."""
        if te.HasField("meter_config") or te.HasField("meter_counter_data"):
            if not tm.direct_meter_id:
                raise P4RuntimeError(Code.INVALID_ARGUMENT, "Table has no direct meters")
            raise P4RuntimeError(
                Code.UNIMPLEMENTED, "Direct meters are not supported by the software switch"
            )
        if te.HasField("counter_data"):
            if not tm.direct_counter_id:
                raise P4RuntimeError(Code.INVALID_ARGUMENT, "Table has no direct counters")
            return te.counter_data
        return None

    @staticmethod
    def _validate_ttl(tm: TableMap, te: p4runtime_pb2.TableEntry) -> bool:
        ttl = te.idle_timeout_ns
        if ttl < 0:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "idle_timeout_ns must be a positive value")
        if ttl > 0 and not tm.supports_idle_timeout:
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT,
                "idle_timeout_ns must be set to 0 for tables which do not support idle timeout",
            )
        return tm.supports_idle_timeout

    def _set_counters(self, unit: int, target, data: p4runtime_pb2.CounterData) -> None:
        # PI writes only the counter's unit; BMv2 keeps the other value.
        if unit in _COUNTS_PACKETS:
            target.packets = data.packet_count
        if unit in _COUNTS_BYTES:
            target.bytes = data.byte_count

    def _table_insert(self, tm: TableMap, te: p4runtime_pb2.TableEntry) -> None:
        if te.is_default_action:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Cannot use INSERT for default entry")
        if not te.HasField("action"):
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "'action' field must be set")
        key, priority = build_key(tm, te)
        action_msg = self._validate_action(tm, te)
        assert action_msg is not None  # has an action, and a direct one
        action, args = self._action(action_msg)
        counters = self._direct_counter_values(tm, te)
        supports_idle = self._validate_ttl(tm, te)
        table = tm.table
        entry = TableEntry(
            key=key,
            priority=priority,
            action=action,
            args=args,
            ttl_ns=te.idle_timeout_ns if supports_idle else 0,
            last_hit_ns=time.monotonic_ns(),
            metadata=bytes(te.metadata),
            controller_metadata=te.controller_metadata,
        )
        if counters is not None:
            dc = self._pmap().direct_counters[tm.direct_counter_id]
            self._set_counters(dc.unit, entry, counters)
        if not tm.match_fields:
            # PI passes an entry of a keyless table to the target, and BMv2
            # refuses it: such a table has its default entry and nothing else.
            raise P4RuntimeError(Code.UNKNOWN, "Error when adding match entry to target")
        try:
            # build_key and build_action_args applied PI's checks already
            table.insert(entry, checked=True)
        except DuplicateEntryError:
            existing = table.get(key, priority)
            if existing is None or not table.is_const_entry(existing):
                raise P4RuntimeError(
                    Code.ALREADY_EXISTS,
                    "Match entry exists, use MODIFY if you wish to change action",
                ) from None
            # PI does not know const entries: BMv2 refuses the clash as a target error.
            raise P4RuntimeError(Code.UNKNOWN, "Error when adding match entry to target") from None
        except TableFullError:
            # BMv2 reports a full table as a generic target error; PI maps it to UNKNOWN.
            raise P4RuntimeError(Code.UNKNOWN, "Error when adding match entry to target") from None
        except InvalidEntryError as e:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, str(e)) from None

    def _table_modify(self, tm: TableMap, te: p4runtime_pb2.TableEntry) -> None:
        key, priority = build_key(tm, te)
        action_msg = self._validate_action(tm, te)
        action_call = None
        if action_msg is not None:
            action_call = self._action(action_msg)
        elif not te.is_default_action:
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT, "'action' field must be set for non-default entries"
            )
        counters = self._direct_counter_values(tm, te)
        supports_idle = self._validate_ttl(tm, te)
        table = tm.table
        if te.is_default_action:
            data = self._defaults.setdefault(tm.id, _DefaultEntryData())
            try:
                if action_call is None:
                    table.reset_default()
                else:
                    table.set_default(*action_call)
            except InvalidEntryError:
                raise P4RuntimeError(
                    Code.UNKNOWN, "Error when modifying match entry in target"
                ) from None
            if action_call is None:
                data.controller_metadata, data.metadata = 0, b""
            else:
                data.controller_metadata, data.metadata = te.controller_metadata, bytes(te.metadata)
            # counter_data was checked above, and has nowhere to go: BMv2's
            # default entry has no direct counter
            return
        entry = table.get(key, priority)
        if entry is None or table.is_const_entry(entry):
            raise P4RuntimeError(Code.NOT_FOUND, "Cannot find match entry")
        assert action_call is not None
        try:
            entry = table.modify(
                key,
                priority,
                action_call[0],
                action_call[1],
                te.idle_timeout_ns if supports_idle else None,
            )
        except (NotFoundError, InvalidEntryError):
            raise P4RuntimeError(
                Code.UNKNOWN, "Error when modifying match entry in target"
            ) from None
        entry.controller_metadata = te.controller_metadata
        entry.metadata = bytes(te.metadata)
        if supports_idle:
            # PI always sets the TTL on MODIFY; BMv2 then restarts the timer.
            entry.last_hit_ns = time.monotonic_ns()
        if counters is not None:
            dc = self._pmap().direct_counters[tm.direct_counter_id]
            self._set_counters(dc.unit, entry, counters)

    def _table_delete(self, tm: TableMap, te: p4runtime_pb2.TableEntry) -> None:
        if te.is_default_action:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Cannot use DELETE for default entry")
        key, priority = build_key(tm, te)
        table = tm.table
        entry = table.get(key, priority)
        if entry is None or table.is_const_entry(entry):
            raise P4RuntimeError(Code.NOT_FOUND, "Cannot find match entry")
        table.delete(key, priority)
        if self.idle is not None:
            self.idle.forget(entry)

    def _counter_write(self, utype: int, ce: p4runtime_pb2.CounterEntry) -> None:
        pmap = self._pmap()
        if not pmap.valid_id(ce.counter_id, PREFIX_COUNTER):
            raise _invalid_id()
        if not ce.HasField("index"):
            raise P4RuntimeError(
                Code.UNIMPLEMENTED, "Wildcard write is not supported for indirect counters yet"
            )
        if ce.index.index < 0:
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT, "A negative number is not a valid index value"
            )
        cm = pmap.counters[ce.counter_id]
        index = ce.index.index
        if utype == U.UNSPECIFIED:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Update type is not set")
        if utype == U.INSERT:
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT, "INSERT update type not supported for counters"
            )
        if utype not in (U.MODIFY, U.DELETE):
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Invalid update type")
        if index >= cm.size:
            raise P4RuntimeError(Code.UNKNOWN, "Error when writing to counter")
        packets, nbytes = cm.array.read(index)
        if utype == U.DELETE:  # PI resets the counter (both units)
            packets = nbytes = 0
        else:
            if cm.unit in _COUNTS_PACKETS:
                packets = ce.data.packet_count
            if cm.unit in _COUNTS_BYTES:
                nbytes = ce.data.byte_count
        cm.array.write(index, packets, nbytes)

    def _entry_for(self, tm: TableMap, te: p4runtime_pb2.TableEntry) -> TableEntry | None:
        """The stored entry a direct resource refers to; None for the default entry.

        BMv2's default entry has no direct counter: the callers answer PI's
        target error for it, after the checks PI makes first.
        """
        key, priority = build_key(tm, te)
        if te.is_default_action:
            return None
        entry = tm.table.get(key, priority)
        if entry is None:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Cannot map table entry to handle")
        return entry

    def _direct_counter_write(self, utype: int, dce: p4runtime_pb2.DirectCounterEntry) -> None:
        if not dce.HasField("table_entry"):
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT, "Missing table_entry field in DirectCounterEntry"
            )
        tm = self._table(dce.table_entry.table_id)
        target = self._entry_for(tm, dce.table_entry)
        if not tm.direct_counter_id:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Table has no direct counters")
        if utype == U.UNSPECIFIED:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Update type is not set")
        if utype == U.INSERT:
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT, "INSERT update type not supported for counters"
            )
        if utype not in (U.MODIFY, U.DELETE):
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Invalid update type")
        if target is None:  # the default entry: PI asks BMv2, which has no counter there
            raise P4RuntimeError(Code.UNKNOWN, "Error when writing to direct counter")
        if utype == U.MODIFY:
            dc = self._pmap().direct_counters[tm.direct_counter_id]
            self._set_counters(dc.unit, target, dce.data)
        else:
            target.packets = target.bytes = 0

    def _register_write(self, utype: int, re: p4runtime_pb2.RegisterEntry) -> None:
        """RegisterEntry MODIFY, as the specification (and a Tofino server) has it."""
        pmap = self._pmap()
        if not pmap.valid_id(re.register_id, PREFIX_REGISTER):
            raise _invalid_id()
        if utype == U.UNSPECIFIED:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Update type is not set")
        if utype in (U.INSERT, U.DELETE):
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT,
                f"{U.Type.Name(utype)} update type not supported for registers",
            )
        if utype != U.MODIFY:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Invalid update type")
        rm = pmap.registers[re.register_id]
        if re.data.WhichOneof("data") != "bitstring":
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT, "RegisterEntry data must be a bitstring for this register"
            )
        value = bytes_to_int(re.data.bitstring, rm.bitwidth)
        if re.HasField("index"):
            index = self._register_index(rm.size, re.index.index)
            rm.array.write(index, value)
        else:
            rm.array.write_range(0, rm.size, value)

    @staticmethod
    def _register_index(size: int, index: int) -> int:
        if index < 0:
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT, "A negative number is not a valid index value"
            )
        if index >= size:
            raise P4RuntimeError(Code.OUT_OF_RANGE, f"Index {index} exceeds the array size {size}")
        return index

    # ----- Read -----------------------------------------------------------------

    def read(self, entities) -> Iterator[p4runtime_pb2.Entity]:
        """The entities answering a ReadRequest, in order; P4RuntimeError stops it."""
        return self._read_entity_list(self._pmap(), entities)

    def _read_entity_list(self, pmap: P4InfoMap, entities) -> Iterator[p4runtime_pb2.Entity]:
        for entity in entities:
            kind = entity.WhichOneof("entity")
            if kind == "table_entry":
                yield from self._table_read(pmap, entity.table_entry)
            elif kind == "counter_entry":
                yield from self._counter_read(pmap, entity.counter_entry)
            elif kind == "direct_counter_entry":
                yield from self._direct_counter_read(pmap, entity.direct_counter_entry)
            elif kind == "register_entry":
                if not self.registers_via_p4runtime:
                    raise P4RuntimeError(Code.UNIMPLEMENTED, "Register reads are not supported yet")
                yield from self._register_read(pmap, entity.register_entry)
            elif kind == "digest_entry":
                assert self.digests is not None
                yield p4runtime_pb2.Entity(
                    digest_entry=self.digests.config_read(entity.digest_entry.digest_id)
                )
            elif kind == "meter_entry":
                meter_id = entity.meter_entry.meter_id
                if meter_id or pmap.has_meters:
                    self._unsupported(pmap, meter_id, PREFIX_METER, "Meters")
            elif kind == "direct_meter_entry":
                self._unsupported(
                    pmap,
                    entity.direct_meter_entry.table_entry.table_id,
                    PREFIX_TABLE,
                    "Direct meters",
                )
            elif kind in ("action_profile_member", "action_profile_group"):
                ap_id = getattr(entity, kind).action_profile_id
                if ap_id or pmap.has_action_profiles:
                    self._unsupported(pmap, ap_id, PREFIX_ACTION_PROFILE, "Action profiles")
            elif kind == "packet_replication_engine_entry":
                raise P4RuntimeError(
                    Code.UNIMPLEMENTED,
                    "Packet replication engine entries are not supported by the software switch",
                )
            elif kind == "value_set_entry":
                raise P4RuntimeError(Code.UNIMPLEMENTED, "ValueSet reads are not supported yet")
            else:
                raise P4RuntimeError(Code.UNKNOWN, "Incorrect entity type")

    def _table_read(self, pmap: P4InfoMap, req: p4runtime_pb2.TableEntry):
        if req.table_id == 0:
            for tm in pmap.tables.values():
                yield from self._table_read_one(pmap, tm, req)
            return
        if not pmap.valid_id(req.table_id, PREFIX_TABLE):
            raise _invalid_id()
        yield from self._table_read_one(pmap, pmap.tables[req.table_id], req)

    def _table_read_one(self, pmap: P4InfoMap, tm: TableMap, req: p4runtime_pb2.TableEntry):
        if req.is_default_action:
            yield self._read_default(pmap, tm, req)
            return
        want_hit = req.HasField("time_since_last_hit")
        if want_hit and not tm.supports_idle_timeout:
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT,
                "Do not set time_since_last_hit for a ReadRequest if the table does not support "
                "idle timeout; yes, that includes wildcard reads",
            )
        want_counters = req.HasField("counter_data") and tm.direct_counter_id != 0
        table = tm.table
        if len(req.match):
            key, priority = build_key(tm, req)
            one = table.get(key, priority)
            entries = [one] if one is not None else []
        else:
            entries = table.entries()
        now_ns = time.monotonic_ns()
        for e in entries:
            entity = p4runtime_pb2.Entity()
            te = entity.table_entry
            te.table_id = tm.id
            key_to_proto(tm, e.key, e.priority, te)
            action_to_proto(pmap, e.action, e.args, te.action.action)
            if want_counters:
                te.counter_data.packet_count = e.packets
                te.counter_data.byte_count = e.bytes
            if not tm.is_const:
                te.controller_metadata = e.controller_metadata
                te.metadata = e.metadata
                te.idle_timeout_ns = e.ttl_ns
                if want_hit:
                    te.time_since_last_hit.elapsed_ns = time_since_last_hit_ns(e, now_ns)
            yield entity

    def _read_default(
        self, pmap: P4InfoMap, tm: TableMap, req: p4runtime_pb2.TableEntry
    ) -> p4runtime_pb2.Entity:
        if req.HasField("time_since_last_hit"):
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT,
                "Default table entries do not support entry ageing, do not set "
                "'time_since_last_hit' in your ReadRequest",
            )
        entity = p4runtime_pb2.Entity()
        te = entity.table_entry
        te.table_id = tm.id
        te.is_default_action = True
        name, args = tm.table.default_action
        action_to_proto(pmap, name, args, te.action.action)
        # No counter_data, even when asked for: BMv2's default entry has no
        # direct counter to read (PI leaves the field out).
        data = self._defaults.setdefault(tm.id, _DefaultEntryData())
        te.controller_metadata = data.controller_metadata
        te.metadata = data.metadata
        return entity

    def _counter_read(self, pmap: P4InfoMap, req: p4runtime_pb2.CounterEntry):
        if req.counter_id == 0:
            ids = list(pmap.counters)
        else:
            if not pmap.valid_id(req.counter_id, PREFIX_COUNTER):
                raise _invalid_id()
            ids = [req.counter_id]
        for cid in ids:
            cm = pmap.counters[cid]
            if req.HasField("index"):
                if req.index.index < 0:
                    raise P4RuntimeError(
                        Code.INVALID_ARGUMENT, "A negative number is not a valid index value"
                    )
                if req.index.index >= cm.size:
                    raise P4RuntimeError(Code.UNKNOWN, "Error when reading counter from target")
                indexes = [req.index.index]
            else:
                indexes = range(cm.size)
            packets, nbytes = cm.array.packets, cm.array.bytes
            for i in indexes:
                entity = p4runtime_pb2.Entity()
                ce = entity.counter_entry
                if req.HasField("index"):
                    ce.CopyFrom(req)
                ce.counter_id = cid
                ce.index.index = i
                ce.data.packet_count = packets[i]
                ce.data.byte_count = nbytes[i]
                yield entity

    def _direct_counter_read(self, pmap: P4InfoMap, req: p4runtime_pb2.DirectCounterEntry):
        if not req.HasField("table_entry"):
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT, "Missing table_entry field in DirectCounterEntry"
            )
        te_req = req.table_entry
        if te_req.table_id == 0:
            raise P4RuntimeError(
                Code.UNIMPLEMENTED,
                "Reading all direct counters for ALL tables is not supported yet",
            )
        if not pmap.valid_id(te_req.table_id, PREFIX_TABLE):
            raise _invalid_id()
        tm = pmap.tables[te_req.table_id]
        if not tm.direct_counter_id:
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "Table has no direct counters")
        if len(te_req.match) or te_req.is_default_action:
            target = self._entry_for(tm, te_req)
            if target is None:  # the default entry, as for writes
                raise P4RuntimeError(Code.UNKNOWN, "Error when reading counter from target")
            entity = p4runtime_pb2.Entity()
            dce = entity.direct_counter_entry
            dce.table_entry.CopyFrom(te_req)
            dce.data.packet_count = target.packets
            dce.data.byte_count = target.bytes
            yield entity
            return
        for e in tm.table.entries():
            entity = p4runtime_pb2.Entity()
            dce = entity.direct_counter_entry
            dce.table_entry.table_id = tm.id
            key_to_proto(tm, e.key, e.priority, dce.table_entry)
            dce.data.packet_count = e.packets
            dce.data.byte_count = e.bytes
            yield entity

    def _register_read(self, pmap: P4InfoMap, req: p4runtime_pb2.RegisterEntry):
        if req.register_id == 0:
            ids = list(pmap.registers)
        else:
            if not pmap.valid_id(req.register_id, PREFIX_REGISTER):
                raise _invalid_id()
            ids = [req.register_id]
        for rid in ids:
            rm = pmap.registers[rid]
            if req.HasField("index"):
                indexes = [self._register_index(rm.size, req.index.index)]
            else:
                indexes = range(rm.size)
            cells = rm.array.values()
            for i in indexes:
                entity = p4runtime_pb2.Entity()
                re = entity.register_entry
                re.register_id = rid
                re.index.index = i
                re.data.bitstring = int_to_bytes(cells[i])
                yield entity
