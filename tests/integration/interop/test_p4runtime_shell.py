"""Interop: p4runtime-shell reads, from the software switch, entries the project's client wrote.

p4runtime-shell (PyPI ``p4runtime-shell`` 0.0.6) pins ``protobuf<3.21`` and
``p4runtime==1.4.1``, which cannot share an environment with the project's
protobuf, so it gets a virtual environment of its own under
``.venv/p4runtime-shell/`` (inside the project's ignored ``.venv/``).

**One-time cost:** the first run creates that environment and installs
p4runtime-shell from PyPI (about 20 s to a minute); later runs reuse it. If
pip cannot install it (no registry), the test is skipped with pip's answer.

The test starts a software switch with the committed flow-cache pipeline,
writes entries with :class:`p4ctl.p4rt.P4RuntimeClient` as the primary (a
high election id), then runs ``shell_read_entries.py`` in the shell's
environment: p4runtime-shell connects as a backup (election id (0, 1)),
fetches the P4Info from the switch (no pipeline push), reads
``FlowIngress.flow_table`` and prints what it read as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from p4ctl.p4rt import P4Info, P4RuntimeClient, TableEntry, insert
from p4ctl.switch.device import SoftwareSwitch

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[3]
PIPELINE = ROOT / "pipelines" / "flowcache"
P4INFO, BMV2_JSON = PIPELINE / "p4info.txtpb", PIPELINE / "bmv2.json"
SHELL_VENV = ROOT / ".venv" / "p4runtime-shell"
SHELL_PACKAGE = "p4runtime-shell==0.0.6"
SCRIPT = Path(__file__).resolve().parent / "shell_read_entries.py"
FLOW_TABLE = "FlowIngress.flow_table"

pytestmark = pytest.mark.skipif(
    not (P4INFO.exists() and BMV2_JSON.exists()),
    reason="pipelines/flowcache P4Info/BMv2 JSON not committed yet (p4c's output)",
)


def _shell_python() -> Path:
    return SHELL_VENV / "bin" / "python"


def _ensure_shell_venv() -> Path:
    """The p4runtime-shell environment's python, created on first use (skip if pip cannot)."""
    python = _shell_python()
    marker = SHELL_VENV / ".p4ctl-installed"
    if python.exists() and marker.exists() and marker.read_text().strip() == SHELL_PACKAGE:
        return python
    log.warning("creating %s with %s (one-time, about a minute)", SHELL_VENV, SHELL_PACKAGE)
    # The project venv's interpreter is a venv itself; `-m venv` builds on its base Python.
    made = subprocess.run([sys.executable, "-m", "venv", "--clear", str(SHELL_VENV)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot create a venv for p4runtime-shell: {made.stderr.strip()[-500:]}")
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         SHELL_PACKAGE],
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    if pip.returncode != 0:
        pytest.skip(f"pip cannot install {SHELL_PACKAGE}: {(pip.stderr or pip.stdout)[-800:]}")
    probe = subprocess.run([str(python), "-c", "import p4runtime_sh.shell"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"p4runtime-shell does not import: {probe.stderr.strip()[-800:]}")
    marker.write_text(SHELL_PACKAGE + "\n")
    return python


@pytest.fixture(scope="module")
def shell_python() -> Path:
    return _ensure_shell_venv()


def _flow(vrf: int, src: int, dst: int, proto: int, sport: int, dport: int) -> dict[str, int]:
    return {"vrf": vrf, "src_addr": src, "dst_addr": dst, "proto": proto,
            "src_port": sport, "dst_port": dport}  # fmt: skip


async def test_p4runtime_shell_reads_entries_written_by_the_project_client(
    shell_python: Path,
) -> None:
    """p4runtime-shell (a backup) sees the primary's entries with their match and
    action, and its own write is refused (only the primary writes)."""
    forward = TableEntry(
        FLOW_TABLE, _flow(3, 0x0A000001, 0x0A000002, 6, 1234, 80), "FlowIngress.flow_forward",
        {"flow_id": 42, "port": 7},
    )  # fmt: skip
    nat = TableEntry(
        FLOW_TABLE, _flow(0, 0x0A000001, 0x08080808, 17, 5353, 53), "FlowIngress.flow_nat",
        {"flow_id": 43, "port": 2, "src_addr": 0xC0A80001, "dst_addr": 0x08080808,
         "src_port": 40000, "dst_port": 53},
    )  # fmt: skip
    switch = SoftwareSwitch(device_id=1, grpc_address="127.0.0.1:0", thrift_address=None)
    switch.preload(P4INFO, BMV2_JSON)
    await switch.start()
    try:
        client = P4RuntimeClient(
            switch.grpc_target, 1, election_id=(1, 0), p4info=P4Info.load(P4INFO)
        )
        await client.connect()
        try:
            assert client.is_primary
            (await client.write([insert(forward), insert(nat)])).raise_on_error()
            proc = await asyncio.create_subprocess_exec(
                str(shell_python), str(SCRIPT), switch.grpc_target, "1", FLOW_TABLE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": ""},
            )  # fmt: skip
            out, err = await proc.communicate()
            # while the shell was connected, the project client stayed primary
            assert client.is_primary
        finally:
            await client.close()
    finally:
        await switch.stop()
    assert proc.returncode == 0, f"p4runtime-shell script failed:\n{err.decode()[-3000:]}"
    report = json.loads(out.decode().strip().splitlines()[-1])
    seen = {(e["action"], json.dumps(e["match"], sort_keys=True)): e for e in report["entries"]}
    assert len(report["entries"]) == 2, report
    for written in (forward, nat):
        key = (written.action, json.dumps(written.match, sort_keys=True))
        assert key in seen, f"{written} not read by p4runtime-shell: {report['entries']}"
        assert seen[key]["params"] == written.params
        assert written.action in seen[key]["text"]
    assert "PERMISSION_DENIED" in report["write_error"], report["write_error"]
