"""Register backends: choosing one by name, BMv2's signed 64-bit values, width checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from p4ctl.p4rt.p4info import P4Info
from p4ctl.p4rt.registers import (
    P4RuntimeRegisters,
    RegisterBackend,
    RegisterError,
    ThriftRegisters,
    register_backend,
)

FIXTURE = Path(__file__).parent / "fixtures" / "mini.p4info.txtpb"


def test_backend_by_name() -> None:
    thrift = register_backend("thrift", thrift_address="10.1.2.3:9091")
    assert isinstance(thrift, ThriftRegisters) and isinstance(thrift, RegisterBackend)
    assert (thrift.host, thrift.port) == ("10.1.2.3", 9091)
    default = register_backend("thrift")
    assert (default.host, default.port) == ("127.0.0.1", 9090)  # type: ignore[attr-defined]
    p4rt = register_backend("p4runtime", client=object())
    assert isinstance(p4rt, P4RuntimeRegisters)
    with pytest.raises(ValueError, match="needs a P4RuntimeClient"):
        register_backend("p4runtime")
    with pytest.raises(ValueError, match="unknown register backend 'tna'"):
        register_backend("tna")


@pytest.mark.parametrize("value", [0, 1, 2**63 - 1, 2**63, 2**64 - 1])
def test_bmv2_i64_round_trip(value: int) -> None:
    raw = ThriftRegisters._to_i64("r", value, 64)
    assert -(2**63) <= raw < 2**63
    assert ThriftRegisters._from_i64(raw, 64) == value


def test_values_are_checked_against_the_register_width() -> None:
    thrift = ThriftRegisters(p4info=P4Info.load(FIXTURE))
    assert thrift._resolve("tcp_state") == ("FlowIngress.tcp_state", 8)
    assert thrift._resolve("last_seen") == ("FlowIngress.last_seen", 48)
    with pytest.raises(RegisterError, match="does not fit in bit<8>"):
        ThriftRegisters._to_i64("FlowIngress.tcp_state", 256, 8)
    with pytest.raises(RegisterError, match="does not fit"):
        ThriftRegisters._to_i64("FlowIngress.tcp_state", -1, 8)
    with pytest.raises(RegisterError, match=r"int<16>: this backend handles bit<W> only"):
        thrift._resolve("delta")
    with pytest.raises(RegisterError, match="unknown register 'nope'"):
        thrift._resolve("nope")
    # BMv2 answers an 8-bit cell as a signed i64; only the register's bits count
    assert ThriftRegisters._from_i64(-1, 8) == 0xFF


def test_a_read_answered_with_another_kind_of_entity_is_an_encoding_error() -> None:
    from p4ctl.p4rt.client import _of_kind
    from p4ctl.p4rt.encoding import EncodingError
    from p4ctl.p4rt.entities import RegisterEntry, TableEntry

    cell = RegisterEntry("r", 1, 5)
    assert _of_kind(cell, RegisterEntry, "r") is cell
    with pytest.raises(EncodingError, match="r: the switch answered a TableEntry to a read "
                                            "of RegisterEntrys"):
        _of_kind(TableEntry("t"), RegisterEntry, "r")


async def test_a_cell_without_a_number_is_a_register_error() -> None:
    from p4ctl.p4rt.entities import RegisterEntry

    class Answers:  # what a P4RuntimeClient's read_registers yields, from a broken switch
        p4info = None

        async def read_registers(self, name: str, index: int | None = None):  # type: ignore[no-untyped-def]
            yield RegisterEntry(name, 0, None)

    backend = P4RuntimeRegisters(Answers())
    with pytest.raises(RegisterError, match=r"register r\[0\]"):
        await backend.read("r", 0)
    with pytest.raises(RegisterError, match="register r: "):
        await backend.read_all("r")
