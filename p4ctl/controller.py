"""One device's controller: the place where client, pipeline, store, agent meet.

:class:`DeviceController` builds, for one configured device, the P4Runtime
client (with the pipeline it keeps installed), the flow mapping from the
pipeline description, the flow store, the register backend the device
configuration names, the provider and the agent, and wires the stream's
digests and packet-ins to the agent. On start it configures the switch's
side of the contract: digests, the port-to-VRF table and the miss policy
(drop, or hold mode). When the client regains mastership after a lost
session, the switch may have lost its state, so the configuration and every
installed flow are written again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from p4.v1 import p4runtime_pb2

from p4ctl.agent import AgentLimits, FlowAgent
from p4ctl.config import Config, ConfigError, DeviceConfig
from p4ctl.config.model import seconds_to_ns
from p4ctl.flows.batch import FlowOp, OpKind, execute
from p4ctl.flows.entry import FlowEntry
from p4ctl.flows.key import FlowKey
from p4ctl.flows.state import LIVE, FlowState
from p4ctl.flows.store import FlowStore
from p4ctl.metrics import Metrics
from p4ctl.p4rt.channel import Credentials
from p4ctl.p4rt.client import ClientOptions, MastershipEvent, P4RuntimeClient
from p4ctl.p4rt.device_config import PipelineConfig, bmv2_device_config
from p4ctl.p4rt.encoding import EncodingError
from p4ctl.p4rt.entities import TableEntry, Update, UpdateType
from p4ctl.p4rt.errors import ErrorKind, P4RuntimeError, WriteResult
from p4ctl.p4rt.registers import RegisterBackend, RegisterError, register_backend
from p4ctl.pipeline import FlowMapping, PipelineSpec, PipelineSpecError
from p4ctl.policy import Policy
from p4ctl.provider import SwitchFlowProvider

log = logging.getLogger(__name__)

#: the first pause before a refused replay is tried again, and the longest one
REPLAY_RETRY_S = 0.5
REPLAY_RETRY_MAX_S = 10.0
#: entries a replay writes between two looks at its progress
REPLAY_CHUNK = 10_000
#: seconds between a replay's progress lines
REPLAY_PROGRESS_S = 5.0


@dataclass(slots=True)
class _Progress:
    """A long replay's progress, logged every ``interval`` seconds."""

    device: str
    total: int
    interval: float
    started: float = field(default_factory=time.monotonic)
    written: int = 0
    logged: float = 0.0

    def add(self, n: int) -> None:
        self.written += n
        now = time.monotonic()
        if now - max(self.started, self.logged) >= self.interval and self.written < self.total:
            self.logged = now
            log.info("%s: replay: %d of %d flow entries written (%.0f/s)", self.device,
                     self.written, self.total, self.written / (now - self.started))


@dataclass(slots=True)
class _Rate:
    """Installed flows per second between two log lines."""

    last_count: int = 0
    last_time: float = 0.0


class DeviceController:
    """Runs the flow cache of one device."""

    def __init__(self, config: Config, device: DeviceConfig, metrics: Metrics) -> None:
        self.config = config
        self.device = device
        self.metrics = metrics
        self.spec = PipelineSpec.load(device.pipeline)
        issues = config.check_table_sizes(
            {"flow_entries": self.spec.sizes.flow_entries,
             "overflow_entries": self.spec.sizes.overflow_entries,
             "bucket_ways": self.spec.sizes.bucket_ways}
        )
        if issues:
            raise ConfigError(issues)
        p4info = self.spec.load_p4info()
        pipeline = None
        if device.push_pipeline:
            pipeline = PipelineConfig.create(p4info, bmv2_device_config(self.spec.bmv2_json()))
        self.client = P4RuntimeClient(
            device.address,
            device.device_id,
            election_id=device.election_id_pair,
            role=device.role,
            credentials=credentials_of(device),
            p4info=p4info,
            pipeline=pipeline,
            # Digest lists are handled concurrently so the agent can coalesce
            # those that arrive during a write into its next batch.
            options=ClientOptions(max_updates_per_request=config.flows.write_batch_size,
                                  digest_concurrency=64),
        )
        self.mapping = FlowMapping(self.spec, p4info)
        self.store = FlowStore(self.spec.sizes)
        self.registers: RegisterBackend = register_backend(
            str(device.registers), client=self.client, thrift_address=device.thrift_address,
            p4info=p4info,
        )
        aging = config.aging
        self.provider = SwitchFlowProvider(
            self.client, self.mapping, self.registers, self.store,
            lambda *l4: seconds_to_ns(aging.timeout_for(*l4)),
        )
        flows = config.flows
        self.agent = FlowAgent(
            self.store,
            Policy.from_config(config.policy),
            self.provider,
            port_vrf=device.port_vrf,
            limits=AgentLimits(
                max_new_flows_per_second=flows.max_new_flows_per_second,
                max_flows_per_port=flows.max_flows_per_port,
                max_flows_per_vrf=flows.max_flows_per_vrf,
                hold_queue=flows.hold_queue,
            ),
            send_packet_out=self.client.send_packet_out,
            metrics=metrics,
            device=device.name,
            write_batch_size=flows.write_batch_size,
        )
        self.client.on_digest(self.agent.on_new_flows,
                              self.spec.role("digests", "new_flow", "name"))
        self.client.on_digest(self.agent.on_flow_events,
                              self.spec.role("digests", "flow_event", "name"))
        if flows.hold_mode:
            self.client.on_packet_in(self.agent.on_packet_in)
        self.client.on_mastership(self._on_mastership)
        self._rate = _Rate()
        self._replaying: asyncio.Task[None] | None = None
        self._started = False
        #: whether the switch has this controller's configuration and flows as
        #: far as it knows: set once written as primary, cleared on losing primacy
        self._in_charge = False
        #: replays asked for by mastership events so far (see _on_mastership)
        self._replays_asked = 0
        #: times primacy was lost (a start that lost it while configuring replays)
        self._primacy_lost = 0
        self.replay_chunk = REPLAY_CHUNK
        self.replay_progress_s = REPLAY_PROGRESS_S
        labels = (("device", device.name),)
        metrics.gauge("switch_connected", "1 while the controller has a session with the switch",
                      collect=lambda: [(labels, float(self.client.is_connected))])
        metrics.gauge("switch_primary", "1 while the controller is the switch's primary",
                      collect=lambda: [(labels, float(self.client.is_primary))])
        #: entries a replay could not write (FAILED, their slots kept): the
        #: next replay, even one after primacy was lost and won again, tries them
        self._unwritten: list[FlowEntry] = []

    async def start(self, timeout: float = 30.0) -> None:
        """Connect; as primary, configure the switch. A backup waits to become primary,
        and so does a primary that lost primacy while it configured the switch."""
        log.info("%s: connecting to %s (device id %d)", self.device.name, self.device.address,
                 self.device.device_id)
        await self.client.connect(timeout)  # pushes the pipeline if the device lacks it
        if self.client.is_primary:
            lost = self._primacy_lost
            try:
                await self.take_charge()
                # primacy lost (and maybe won back) meanwhile: another primary wrote too
                self._in_charge = self._primacy_lost == lost
            except P4RuntimeError as exc:
                if exc.kind is not ErrorKind.NOT_PRIMARY:
                    raise
                log.warning("%s: primacy lost while configuring the switch (%s)",
                            self.device.name, exc)
        self._started = True
        if self.client.is_primary and not self._in_charge:
            self._ask_replay()  # events before _started were left to this
        self._rate = _Rate(self.agent.counters.installed, time.monotonic())
        log.info("%s: ready (%s)", self.device.name,
                 "primary" if self.client.is_primary else "backup: waiting to become primary")

    async def stop(self) -> None:
        if self._replaying is not None:
            self._replaying.cancel()
        await self.client.close()
        await self.registers.close()

    async def take_charge(self) -> None:
        """Configure the switch, and remove the flows it holds that the store does not."""
        await self.configure_switch()
        await self.remove_extraneous()

    async def remove_extraneous(self) -> int:
        """Delete the flow entries and overflow slots the store does not hold; how many.

        A switch that outlived its controller (a restart of ``p4ctl run``, a
        failover to a backup whose store is empty) keeps flows nobody ages
        or knows: they would forward (or drop, or translate) by a policy
        that may have changed, and collide with the reverse keys of new
        flows. An entry stays when the store holds its key at its flow id;
        the rest go, and their slots' TCP state with them. Their next packet
        makes them new flows. A failed read or write is logged: what is left
        over is only stale.
        """
        mapping, store = self.mapping, self.store
        wanted = p4runtime_pb2.TableEntry(table_id=mapping.flow_table_id)
        #: (packed key, or None for what does not parse, and its DELETE)
        deletes: list[tuple[int | None, p4runtime_pb2.Update]] = []
        freed: list[int] = []
        try:
            async for entity in self.client.read_raw([p4runtime_pb2.Entity(table_entry=wanted)]):
                entry = entity.table_entry
                if entry.table_id != mapping.flow_table_id:
                    continue  # not what was asked for (a broken switch): not ours to delete
                try:
                    key, flow_id, _ = mapping.parse_table_entry(entry)
                except (PipelineSpecError, EncodingError, KeyError, ValueError):
                    key, flow_id = None, -1
                holder = store.by_flow_id(flow_id) if flow_id >= 0 else None
                if holder is not None and key is not None and holder.key == key.packed():
                    continue
                update = p4runtime_pb2.Update(type=p4runtime_pb2.Update.DELETE)
                update.entity.table_entry.table_id = entry.table_id
                update.entity.table_entry.match.extend(entry.match)
                deletes.append((key.packed() if key is not None else None, update))
                if 0 <= flow_id < store.sizes.slots and holder is None:
                    freed.append(flow_id)
            valid_name = mapping.registers["overflow_valid"]
            first = store.sizes.flow_entries
            stale = [slot for slot, valid in enumerate(await self.registers.read_all(valid_name))
                     if valid and store.by_flow_id(first + slot) is None]
        except (P4RuntimeError, RegisterError) as exc:
            log.warning("%s: could not read the flow table back: %s", self.device.name, exc)
            return 0
        # The agent goes on meanwhile (the digests are on): it may have made
        # one of these keys a new flow's (its add met the stale entry and
        # modified it) or given a new flow a slot found free above. Each key
        # and slot is looked at again right before its write, with nothing
        # awaited in between.
        deletes = [(k, u) for k, u in deletes
                   if k is None or (held := store.get(k)) is None or held.state not in LIVE]
        try:
            if deletes:
                result = await self.client.write([u for _, u in deletes])
                refused = [s for s in result.statuses
                           if not s.ok and s.kind is not ErrorKind.NOT_FOUND]
                if refused:
                    log.warning("%s: %d extraneous flow entries not deleted (%s)",
                                self.device.name, len(refused), refused[0])
            stale = [slot for slot in stale if store.by_flow_id(first + slot) is None]
            if stale:
                await self.registers.write_many((valid_name, slot, 0) for slot in stale)
                freed += [first + slot for slot in stale]
        except (P4RuntimeError, RegisterError) as exc:
            log.warning("%s: could not remove extraneous flows: %s", self.device.name, exc)
        freed = [flow_id for flow_id in freed if store.by_flow_id(flow_id) is None]
        if freed:
            await self.provider.clear_state(freed)
        if deletes or stale:
            log.info("%s: removed %d flow entries and %d overflow slots the controller does "
                     "not hold", self.device.name, len(deletes), len(stale))
        return len(deletes) + len(stale)

    async def configure_switch(self) -> None:
        """Digests, the port-to-VRF table and the miss policy."""
        settings = self.config.flows.digest
        for role in ("new_flow", "flow_event"):
            await self.client.configure_digest(
                self.spec.role("digests", role, "name"),
                max_timeout_ns=settings.max_timeout_ns,
                max_list_size=settings.max_list_size,
                ack_timeout_ns=settings.ack_timeout_ns,
            )
        table = self.spec.role("tables", "port_vrf")
        entries = [
            TableEntry(table["name"], {table["match"]["in_port"]: port},
                       table["actions"]["set_vrf"]["name"],
                       {table["actions"]["set_vrf"]["params"]["vrf"]: vrf})
            for port, vrf in sorted(self.device.port_vrf.items())
        ]
        if entries:
            result = await self.client.write([Update(UpdateType.INSERT, e) for e in entries])
            failed = result.failed()
            again = [entries[i] for i, _, s in failed if s.kind is ErrorKind.ALREADY_EXISTS]
            # a port left out would classify its flows in the wrong VRF: refuse to go on
            refused = [(u, s) for _, u, s in failed if s.kind is not ErrorKind.ALREADY_EXISTS]
            if refused:
                WriteResult([u for u, _ in refused], [s for _, s in refused]).raise_on_error()
            if again:
                result = await self.client.write([Update(UpdateType.MODIFY, e) for e in again])
                result.raise_on_error()
        miss = self.spec.role("tables", "miss_policy")
        action = miss["actions"]["to_cpu" if self.config.flows.hold_mode else "drop"]["name"]
        result = await self.client.write([Update(
            UpdateType.MODIFY, TableEntry(miss["name"], action=action, is_default_action=True)
        )])
        result.raise_on_error()

    async def _on_mastership(self, event: MastershipEvent) -> None:
        """Replay whenever this controller (again) becomes primary of a switch that may
        have lost its state or been written by another controller meanwhile."""
        if not event.is_primary:
            log.warning("%s: not primary (%s)", self.device.name, event.message or "backup")
            self._in_charge = False
            self._primacy_lost += 1
            return
        if not self._started:
            return  # start() configures the switch itself
        if event.reconnected or event.pipeline_pushed or not self._in_charge:
            self._ask_replay()

    def _ask_replay(self) -> None:
        # a replay under way sees the count move and replays once more: the
        # switch it was writing may have changed under it
        self._replays_asked += 1
        if self._replaying is None or self._replaying.done():
            self._replaying = asyncio.create_task(self._replay_until_done(), name="replay")

    async def _replay_until_done(self) -> None:
        """:meth:`replay` until the switch took all of it, while this controller is primary.

        A replay that gave up after one refused write would leave the switch
        without digests or flows for good: it is tried again after a pause,
        the flows it could not write included. One asked for while it ran
        follows at once. Once primacy is lost, the next mastership event
        starts a new one.
        """
        pause = REPLAY_RETRY_S
        while True:
            asked = self._replays_asked
            try:
                await self.replay(self._unwritten)  # which sets _unwritten, whatever happens
                problem = (f"{len(self._unwritten)} flow entries not written again "
                           f"({self._unwritten[0].reason})" if self._unwritten else "")
            except P4RuntimeError as exc:
                problem = f"replay failed ({exc})"
            except Exception as exc:  # a bug, or a switch's surprise: tried again all the same
                log.exception("%s: replay failed", self.device.name)
                problem = f"replay failed ({exc!r})"
            if asked != self._replays_asked:
                continue
            if not self.client.is_primary:
                if problem:
                    log.warning("%s: replay stopped, not primary: %s", self.device.name, problem)
                return
            if not problem:
                self._in_charge = True
                return
            log.warning("%s: %s; again in %.1f s", self.device.name, problem, pause)
            await asyncio.sleep(pause)
            pause = min(2 * pause, REPLAY_RETRY_MAX_S)

    async def replay(self, again: list[FlowEntry] | None = None) -> list[FlowEntry]:
        """Write the configuration and every flow again (the device may have lost them).

        ``again``: entries a previous replay could not write (still FAILED
        with their slot) to try with the installed ones. Returns the entries
        this one could not write, and keeps them in ``_unwritten`` also when
        it is cut short.

        Reverse entries first, then the forward entries whose reverse entry
        is back: a switch that kept its tables (a stream that broke and came
        back) answers ALREADY_EXISTS, and the entry is then modified to this
        controller's action, which is the authoritative one (another primary
        may have changed it meanwhile). As one two-stage batch, the first
        such answer would have failed every forward entry unsent, though the
        switch still held them. A refused entry keeps its slot: it was on the
        switch before, and may still be.
        """
        log.info("%s: replaying the switch configuration and %d flow entries",
                 self.device.name, self.store.count(FlowState.ADDED) + len(again or ()))
        pipeline = self.client.pipeline
        if pipeline is not None and self.client.pipeline_error is not None:
            # the session's push failed: without it every write below would
            await self.client.ensure_pipeline(pipeline)
            self.client.pipeline_error = None
        await self.take_charge()
        entries = list(self.store.in_state(FlowState.ADDED))
        entries += [e for e in again or () if e.state is FlowState.FAILED
                    and self.store.get(e.key) is e]
        for entry in entries:
            self.store.move(entry, FlowState.PENDING_ADD)
        progress = _Progress(self.device.name, len(entries), self.replay_progress_s)
        try:
            await self._reinstall([e for e in entries if not e.forward], progress)
            forward = []
            for entry in entries:
                if not entry.forward:
                    continue
                partner = entry.partner
                if partner is None or partner.state is FlowState.ADDED:
                    forward.append(entry)
                else:  # its replies would find no entry; the switch may still hold it
                    self.store.move(entry, FlowState.FAILED,
                                    reason="ABORTED: its reverse entry was not written again")
            await self._reinstall(forward, progress)
        finally:
            # a replay cut short (a surprise, a cancellation) leaves what it did
            # not write FAILED with its slot, for the next replay to write
            for entry in entries:
                if entry.state is FlowState.PENDING_ADD:
                    self.store.move(entry, FlowState.FAILED,
                                    reason="ABORTED: the replay stopped")
            self._unwritten = unwritten = [e for e in entries if e.state is FlowState.FAILED]
        log.info("%s: replay: %d of %d flow entries written in %.1f s", self.device.name,
                 len(entries) - len(unwritten), len(entries),
                 time.monotonic() - progress.started)
        return unwritten

    async def _reinstall(self, entries: list[FlowEntry], progress: _Progress) -> None:
        """ADD ``entries`` again (the provider modifies one the switch already holds
        to the store's action), in chunks of :attr:`replay_chunk`, so that a
        replay of half a million entries says how far it got."""
        for at in range(0, len(entries), self.replay_chunk):
            chunk = entries[at:at + self.replay_chunk]
            await execute(self.store, self.provider,
                          [[FlowOp(OpKind.ADD, e) for e in chunk]], keep_slots=True)
            progress.add(len(chunk))

    def status_line(self) -> str:
        """The once-a-minute log line: flows/s, active flows, failures."""
        now = time.monotonic()
        c = self.agent.counters
        rate = self._rate
        elapsed = now - rate.last_time if rate.last_time else 0.0
        per_s = (c.installed - rate.last_count) / elapsed if elapsed > 0 else 0.0
        rate.last_count, rate.last_time = c.installed, now
        client = self.client
        role = ("" if client.is_primary else ", backup" if client.is_connected
                else ", DISCONNECTED from the switch")
        return (f"{self.device.name}: {per_s:.1f} flows/s, "
                f"{self.store.count(FlowState.ADDED)} entries active, "
                f"{self.store.count(FlowState.PENDING_ADD)} pending, "
                f"{c.failed + c.table_full} failed, "
                f"{c.rate_limited + c.port_limited + c.vrf_limited} reports over limits{role}")

    def flow_table(self, limit: int | None = None) -> list[str]:
        """A readable view of the flow table, one line per session."""
        lines = []
        for entry in self.store:
            if not entry.forward and entry.partner is not None:
                continue
            key: FlowKey = entry.flow_key
            partner = entry.partner
            lines.append(
                f"{entry.flow_id:>7} {key!s:<58} {entry.action!s:<24} {entry.state.name:<14}"
                + (f" rev {partner.flow_id} {partner.state.name}" if partner else "")
                + (f" ({entry.reason})" if entry.reason else "")
            )
            if limit is not None and len(lines) >= limit:
                break
        return lines


def credentials_of(device: DeviceConfig) -> Credentials | None:
    """The channel credentials a device's ``tls`` settings ask for (None: plaintext)."""
    tls = device.tls
    if tls is None:
        return None
    if tls.mutual:
        assert tls.cert is not None and tls.key is not None
        return Credentials.mutual_tls(tls.ca, tls.cert, tls.key, server_name=tls.server_name)
    return Credentials.tls(tls.ca, server_name=tls.server_name)
