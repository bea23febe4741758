"""One register interface over P4Runtime RegisterEntry and BMv2's Thrift API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from p4rt_helpers import Target

from p4ctl.p4rt import (
    P4RuntimeClient,
    P4RuntimeRegisters,
    RegisterBackend,
    RegisterError,
    ThriftRegisters,
    register_backend,
)


@pytest.fixture(params=["p4runtime", "thrift"])
async def registers(
    request: pytest.FixtureRequest, target: Target, client: P4RuntimeClient
) -> AsyncIterator[RegisterBackend]:
    if request.param == "p4runtime" and not target.p4runtime_registers:
        pytest.skip(f"{target.kind} answers UNIMPLEMENTED for P4Runtime registers")
    backend = register_backend(
        request.param, client=client, thrift_address=target.thrift_address, p4info=client.p4info
    )
    assert isinstance(backend, RegisterBackend)
    try:
        yield backend
    finally:
        await backend.close()


async def test_write_and_read_cells(registers: RegisterBackend, target: Target) -> None:
    await registers.write("ovf_action", 5, 3)
    assert await registers.read("ovf_action", 5) == 3
    await registers.write("FlowIngress.ovf_key_addrs", 1, 0x7FFF_FFFF_FFFF_FFFE)
    assert await registers.read("ovf_key_addrs", 1) == 0x7FFF_FFFF_FFFF_FFFE
    await registers.write("FlowIngress.ovf_key_addrs", 1, 0xFFFF_FFFF_FFFF_FFFF)
    got = await registers.read("ovf_key_addrs", 1)
    if target.kind == "bmv2" and isinstance(registers, ThriftRegisters):
        # BMv2 answers Data::get<int64_t>(), which saturates: the cell holds all
        # 64 bits (the data plane sees them) but reads back as 2^63 - 1
        assert got == ThriftRegisters.BMV2_SATURATED
    else:
        assert got == 0xFFFF_FFFF_FFFF_FFFF  # all 64 bits
    await registers.write("ovf_key_rest", 2, 0x00AB_CDEF_0123_45)
    assert await registers.read("ovf_key_rest", 2) == 0x00AB_CDEF_0123_45


async def test_read_all_and_write_range(registers: RegisterBackend, client: P4RuntimeClient
                                        ) -> None:
    size = client.p4info.registers["ovf_port"].size
    await registers.write_range("ovf_port", 10, 20, 7)  # half-open: 10..19
    values = await registers.read_all("ovf_port")
    assert len(values) == size
    assert values[9] == 0 and values[10:20] == [7] * 10 and values[20] == 0


async def test_write_many_across_registers(registers: RegisterBackend) -> None:
    await registers.write_many(
        [("ovf_key_addrs", 4, 0x0A0000010A000002), ("ovf_action", 4, 1), ("ovf_valid", 4, 1)]
    )
    assert await registers.read("ovf_key_addrs", 4) == 0x0A0000010A000002
    assert await registers.read("ovf_valid", 4) == 1


async def test_errors_name_the_register(registers: RegisterBackend, client: P4RuntimeClient
                                        ) -> None:
    size = client.p4info.registers["ovf_valid"].size
    with pytest.raises(RegisterError, match="ovf_valid"):
        await registers.write("ovf_valid", size, 1)
    with pytest.raises(RegisterError, match="ovf_valid"):
        await registers.read("ovf_valid", size)
    with pytest.raises(RegisterError, match="no_such_register"):
        await registers.read("no_such_register", 0)
    with pytest.raises(RegisterError, match="does not fit in bit<1>"):
        await registers.write("ovf_valid", 0, 2)
    # still usable afterwards
    await registers.write("ovf_valid", 0, 1)
    assert await registers.read("ovf_valid", 0) == 1


async def test_thrift_without_p4info_uses_bmv2_names(target: Target, client: P4RuntimeClient
                                                     ) -> None:
    host, port = target.thrift_address.rsplit(":", 1)
    thrift = ThriftRegisters(host, int(port))
    try:
        await thrift.write("FlowIngress.ovf_action", 0, 2)
        assert await thrift.read("FlowIngress.ovf_action", 0) == 2
        with pytest.raises(RegisterError, match="INVALID_REGISTER_NAME"):
            await thrift.read("ovf_action", 0)  # BMv2 knows full names only
    finally:
        await thrift.close()


async def test_both_paths_see_the_same_cells(target: Target, client: P4RuntimeClient) -> None:
    if not target.p4runtime_registers:
        pytest.skip(f"{target.kind} has no P4Runtime register access to compare with")
    p4rt = P4RuntimeRegisters(client)
    thrift = register_backend("thrift", thrift_address=target.thrift_address, p4info=client.p4info)
    try:
        await thrift.write("ovf_nat_ports", 3, 0x1234_5678)
        assert await p4rt.read("ovf_nat_ports", 3) == 0x1234_5678
        await p4rt.write("ovf_nat_ports", 3, 0x0BAD_F00D)
        assert await thrift.read("ovf_nat_ports", 3) == 0x0BAD_F00D
    finally:
        await thrift.close()
