"""The flow-cache PTF suite against the software switch (``p4ctl switch``) over veth pairs.

In a network namespace of its own (see ``ptf_harness``): ``p4ctl switch
--pipeline pipelines/flowcache`` attached to one end of three veth pairs
(switch ports 1..3), and ``ptf`` running ``tests/ptf/flowcache/`` on the other
ends, talking P4Runtime to the switch over the namespace's loopback. The test
asserts ptf's exit code and that every test of the suite ran and passed.

Needs root and iproute2 (skipped with the reason otherwise), and the committed
P4Info and BMv2 JSON. ``tests/bmv2/test_ptf_bmv2.py`` runs the same suite,
unchanged, against ``simple_switch_grpc``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ptf_harness import (
    CPU_PORT,
    GRPC_ADDR,
    PIPELINE_DIR,
    THRIFT_ADDR,
    VENV_BIN,
    assert_all_passed,
    environment_problem,
    list_ptf_tests,
    namespace,
    run_ptf,
    running,
    suite_params,
    wait_for_grpc,
)

_problem = environment_problem()
pytestmark = pytest.mark.skipif(_problem is not None, reason=_problem or "")


@pytest.mark.parametrize("registers", ["p4runtime", "thrift"])
def test_ptf_suite_on_software_switch(tmp_path: Path, registers: str) -> None:
    """Every PTF test passes; overflow registers written through P4Runtime
    ``RegisterEntry`` (as on a Tofino server) or BMv2's Thrift calls."""
    with namespace() as ns:
        switch_argv = [
            str(VENV_BIN / "p4ctl"), "switch",
            "--pipeline", str(PIPELINE_DIR),
            "--grpc-address", GRPC_ADDR,
            "--thrift-address", THRIFT_ADDR,
            "--cpu-port", str(CPU_PORT),
        ]  # fmt: skip
        for port, ifname in ns.switch_ifs.items():
            switch_argv += ["-i", f"{port}@{ifname}"]
        log = tmp_path / "switch.log"
        with running(ns.exec_argv(switch_argv), log) as proc:
            wait_for_grpc(ns, GRPC_ADDR, proc, log)
            expected = list_ptf_tests(ns, tmp_path)
            assert len(expected) >= 10, expected
            result = run_ptf(ns, suite_params(registers), tmp_path)
            assert proc.poll() is None, f"the switch died during the run:\n{log.read_text()}"
        assert_all_passed(result, expected)
