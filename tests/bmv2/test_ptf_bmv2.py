"""The flow-cache PTF suite, unchanged, against BMv2's ``simple_switch_grpc``.

Same set-up as ``tests/ptf/test_ptf_suite.py`` with BMv2 in place of the
software switch: ``simple_switch_grpc --no-p4 --cpu-port 255`` attached to one
end of three veth pairs in a network namespace of its own (BMv2's Thrift
server listens on all addresses, port 9090, with no option to change it), the
suite pushing the committed P4Info and BMv2 JSON itself, and overflow
registers written through BMv2's Thrift calls (its P4Runtime server answers
UNIMPLEMENTED for registers).

Skipped with the reason where ``simple_switch_grpc`` is not on PATH, or where
the PTF tier cannot run (not root, no iproute2, artifacts not committed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# the PTF tier's set-up helpers live with the PTF suite
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ptf"))

from ptf_harness import (
    CPU_PORT,
    GRPC_ADDR,
    SIMPLE_SWITCH_GRPC,
    assert_all_passed,
    bmv2_problem,
    list_ptf_tests,
    namespace,
    run_ptf,
    running,
    suite_params,
    wait_for_grpc,
)

_problem = bmv2_problem()
pytestmark = pytest.mark.skipif(_problem is not None, reason=_problem or "")


def test_ptf_suite_on_bmv2(tmp_path: Path) -> None:
    with namespace(prefix="p4ctl-bmv2") as ns:
        argv = [str(SIMPLE_SWITCH_GRPC), "--no-p4", "--device-id", "1",
                "--log-file", str(tmp_path / "bmv2"), "--log-flush"]  # fmt: skip
        for port, ifname in ns.switch_ifs.items():
            argv += ["-i", f"{port}@{ifname}"]
        argv += ["--", "--cpu-port", str(CPU_PORT), "--grpc-server-addr", GRPC_ADDR]
        log = tmp_path / "simple_switch_grpc.out"
        with running(ns.exec_argv(argv), log) as proc:
            wait_for_grpc(ns, GRPC_ADDR, proc, log)
            expected = list_ptf_tests(ns, tmp_path)
            result = run_ptf(ns, suite_params("thrift"), tmp_path)
            assert proc.poll() is None, f"simple_switch_grpc died:\n{log.read_text()}"
        assert_all_passed(result, expected)
