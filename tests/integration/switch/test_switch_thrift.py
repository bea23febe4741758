"""BMv2's Thrift runtime API (registers, counters) over real Thrift, as simple_switch_CLI talks."""

from __future__ import annotations

import asyncio

import pytest
from bm_runtime.standard import Standard
from bm_runtime.standard.ttypes import (
    BmCounterValue,
    CounterOperationErrorCode,
    InvalidCounterOperation,
    InvalidRegisterOperation,
    RegisterOperationErrorCode,
)
from p4.v1 import p4runtime_pb2 as p4r
from switch_helpers import SEEN, Client, frame, update
from thrift.protocol import TBinaryProtocol, TMultiplexedProtocol
from thrift.Thrift import TApplicationException
from thrift.transport import TSocket, TTransport

REG = "TestIngress.seen"
CTR = "TestIngress.port_counter"


class ThriftClient:
    """``bm_cli.bmpy_utils.thrift_connect`` without its sys.exit on failure."""

    def __init__(self, port: int) -> None:
        self.transport = TTransport.TBufferedTransport(TSocket.TSocket("127.0.0.1", port))
        protocol = TMultiplexedProtocol.TMultiplexedProtocol(
            TBinaryProtocol.TBinaryProtocol(self.transport), "standard"
        )
        self.client = Standard.Client(protocol)
        self.transport.open()

    async def call(self, name: str, *args):
        """Run a blocking Thrift call off the event loop (the switch runs on it)."""
        return await asyncio.to_thread(getattr(self.client, name), *args)

    def close(self) -> None:
        self.transport.close()


@pytest.fixture
async def thrift(loaded_switch):
    client = await asyncio.to_thread(ThriftClient, loaded_switch.thrift_port)
    yield client
    client.close()


async def test_register_read_write_and_read_all(thrift, loaded_switch) -> None:
    assert await thrift.call("bm_register_read", 0, REG, 3) == 0
    await thrift.call("bm_register_write", 0, REG, 3, 41)
    assert await thrift.call("bm_register_read", 0, REG, 3) == 41
    # the data plane sees it
    await loaded_switch.inject(3, frame(0x02))
    assert await thrift.call("bm_register_read", 0, REG, 3) == 42
    cells = await thrift.call("bm_register_read_all", 0, REG)
    assert len(cells) == 16 and cells[3] == 42


async def test_register_write_range_is_half_open_and_reset_zeroes(thrift) -> None:
    await thrift.call("bm_register_write_range", 0, REG, 2, 5, 7)
    cells = await thrift.call("bm_register_read_all", 0, REG)
    assert cells[:6] == [0, 0, 7, 7, 7, 0]
    await thrift.call("bm_register_write_range", 0, REG, 0, 16, 1)
    assert set(await thrift.call("bm_register_read_all", 0, REG)) == {1}
    await thrift.call("bm_register_reset", 0, REG)
    assert set(await thrift.call("bm_register_read_all", 0, REG)) == {0}


async def test_register_values_are_masked_to_the_width(thrift) -> None:
    await thrift.call("bm_register_write", 0, REG, 1, -1)  # i64 -1 into bit<32>
    assert await thrift.call("bm_register_read", 0, REG, 1) == 0xFFFFFFFF


async def test_register_errors(thrift) -> None:
    cases = [
        (("bm_register_read", 0, "nope", 0), RegisterOperationErrorCode.INVALID_REGISTER_NAME),
        (("bm_register_read", 0, REG, 16), RegisterOperationErrorCode.INVALID_INDEX),
        (("bm_register_read_all", 0, "nope"), RegisterOperationErrorCode.INVALID_REGISTER_NAME),
        (("bm_register_write", 0, REG, -1, 1), RegisterOperationErrorCode.INVALID_INDEX),
        (("bm_register_write_range", 0, REG, 4, 17, 1), RegisterOperationErrorCode.INVALID_INDEX),
        (("bm_register_write_range", 0, REG, 5, 4, 1), RegisterOperationErrorCode.INVALID_INDEX),
        (("bm_register_reset", 0, "nope"), RegisterOperationErrorCode.INVALID_REGISTER_NAME),
    ]
    for args, code in cases:
        with pytest.raises(InvalidRegisterOperation) as info:
            await thrift.call(*args)
        assert info.value.code == code, args


async def test_thrift_and_p4runtime_see_the_same_registers(thrift, loaded_switch) -> None:
    async with Client.of(loaded_switch) as c:
        await c.primary(1)
        re = p4r.RegisterEntry(register_id=SEEN)
        re.index.index = 9
        re.data.bitstring = b"\x01\x02"
        await c.write(update(p4r.Update.MODIFY, register_entry=re))
        assert await thrift.call("bm_register_read", 0, REG, 9) == 0x0102
        await thrift.call("bm_register_write", 0, REG, 9, 5)
        [got] = await c.read(p4r.Entity(register_entry=p4r.RegisterEntry(
            register_id=SEEN, index=p4r.Index(index=9))))
        assert got.register_entry.data.bitstring == b"\x05"


async def test_counters(thrift, loaded_switch) -> None:
    await loaded_switch.inject(2, frame(0x02))
    value = await thrift.call("bm_counter_read", 0, CTR, 2)
    assert (value.packets, value.bytes) == (1, len(frame(0x02)))
    await thrift.call("bm_counter_write", 0, CTR, 2, BmCounterValue(bytes=10, packets=3))
    value = await thrift.call("bm_counter_read", 0, CTR, 2)
    assert (value.packets, value.bytes) == (3, 10)
    await thrift.call("bm_counter_reset_all", 0, CTR)
    value = await thrift.call("bm_counter_read", 0, CTR, 2)
    assert (value.packets, value.bytes) == (0, 0)
    with pytest.raises(InvalidCounterOperation) as info:
        await thrift.call("bm_counter_read", 0, "TestIngress.l2_counter", 0)  # direct
    assert info.value.code == CounterOperationErrorCode.INVALID_COUNTER_NAME
    with pytest.raises(InvalidCounterOperation) as info:
        await thrift.call("bm_counter_read", 0, CTR, 8)
    assert info.value.code == CounterOperationErrorCode.INVALID_INDEX


async def test_config_and_table_size_calls(thrift, loaded_switch) -> None:
    assert await thrift.call("bm_get_config") == loaded_switch.device_mgr.device_config.decode()
    assert await thrift.call("bm_mt_get_num_entries", 0, "TestIngress.l2") == 0


async def test_other_calls_answer_an_application_exception(thrift) -> None:
    with pytest.raises(TApplicationException) as info:
        await thrift.call("bm_mt_clear_entries", 0, "TestIngress.l2", False)
    assert "not supported" in str(info.value)
    # the connection is still usable afterwards
    assert await thrift.call("bm_register_read", 0, REG, 0) == 0


async def test_without_a_pipeline_no_register_exists(software_switch) -> None:
    client = await asyncio.to_thread(ThriftClient, software_switch.thrift_port)
    try:
        with pytest.raises(InvalidRegisterOperation):
            await client.call("bm_register_read", 0, REG, 0)
    finally:
        client.close()
