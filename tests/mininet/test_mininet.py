"""Hosts with real kernel stacks talk through the software switch that the controller runs.

A mininet topology, h1 -- s1 -- h2: ``s1`` is ``p4ctl switch`` with the
committed pipeline on the switch ends of the links (ports 1 and 2), or
``simple_switch_grpc`` started as the README says where it is installed,
and ``p4ctl run`` controls it with the example configuration in hold mode. The
hosts' own stacks then ping, hold a TCP connection through the source NAT
rule (h2 sees h1 as 203.0.113.1) and exchange UDP, and ``p4ctl flows`` lists
what the controller installed. The program forwards IPv4 only, so the hosts
get static ARP entries (mininet's ``staticArp``).

Needs root and Debian's mininet (``apt-get install --no-install-recommends
mininet``; it imports from the system's Python, reached here through a
folder holding a link to its package). Skipped with the reason otherwise.
Never runs ``mn -c``: the topology cleans up its own links and namespaces.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path("/usr/lib/python3/dist-packages/mininet")
HOST_PYTHON = "/usr/bin/python3"


def _problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mininet makes network namespaces)"
    if shutil.which("mnexec") is None or not PACKAGE.is_dir():
        return "needs Debian's mininet (apt-get install --no-install-recommends mininet)"
    if shutil.which("ethtool") is None:
        return "needs ethtool (to turn the hosts' checksum offload off)"
    if not Path(HOST_PYTHON).exists():
        return f"needs {HOST_PYTHON} for the hosts' servers and clients"
    return None


_PROBLEM = _problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")


def _import_mininet() -> Any:
    """mininet's modules, from the system's package (the venv cannot install it)."""
    holder = Path(tempfile.mkdtemp(prefix="p4ctl-mininet-"))
    (holder / "mininet").symlink_to(PACKAGE)
    sys.path.insert(0, str(holder))
    import mininet.net
    import mininet.node

    return mininet


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(address: str, timeout: float = 30.0) -> None:
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, int(port))) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {address}")


@pytest.fixture(params=["software", "bmv2"])
def network(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """The topology, its switch (``p4ctl switch`` or ``simple_switch_grpc``) and a
    running controller; yields the network and the controller's configuration."""
    bmv2 = request.param == "bmv2"
    if bmv2 and shutil.which("simple_switch_grpc") is None:
        pytest.skip("simple_switch_grpc is not on PATH")
    mn = _import_mininet()
    grpc, thrift = f"127.0.0.1:{_free_port()}", _free_port()

    class P4Switch(mn.node.Switch):  # type: ignore[misc,name-defined]
        """The P4 switch on this switch's interfaces (in the root namespace)."""

        def start(self, controllers: list[Any]) -> None:
            ports = [f"{self.ports[i]}@{i.name}" for i in self.intfList() if i.name != "lo"]
            if bmv2:  # as the README starts it; the controller pushes the pipeline
                args = ["simple_switch_grpc", "--no-p4", "--device-id", "1",
                        "--thrift-port", str(thrift)]
                for port in ports:
                    args += ["-i", port]
                args += ["--", "--cpu-port", "255", "--grpc-server-addr", grpc]
            else:
                args = [sys.executable, "-m", "p4ctl.cli", "switch", "--no-thrift",
                        "--pipeline", str(ROOT / "pipelines" / "flowcache"),
                        "--grpc-address", grpc]
                for port in ports:
                    args += ["-i", port]
            self.log = open(tmp_path / "switch.log", "w")  # noqa: SIM115
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self.log,
                                         stderr=subprocess.STDOUT)

        def stop(self, deleteIntfs: bool = True) -> None:
            try:
                _end(self.proc)
                self.log.close()
            finally:
                super().stop(deleteIntfs)

    net = mn.net.Mininet(switch=P4Switch, controller=None, autoSetMacs=True)
    controller = None
    try:
        h1 = net.addHost("h1", ip="10.0.0.1/24")
        h2 = net.addHost("h2", ip="10.0.0.2/24")
        s1 = net.addSwitch("s1")
        net.addLink(h1, s1, port2=1)
        net.addLink(h2, s1, port2=2)
        net.start()
        net.staticArp()
        for host in (h1, h2):
            # A host's kernel leaves TCP/UDP checksums to the NIC (a veth's
            # peer takes them as done); the switch reads and sends frames
            # through packet sockets, which carry the frame as it is. So the
            # hosts compute their checksums themselves.
            host.cmd(f"ethtool --offload {host.name}-eth0 rx off tx off")
        # h2 also answers as 198.51.100.7 (the outbound NAT rule's network),
        # and reaches the NAT address 203.0.113.1 at h1's MAC
        h2.cmd("ip addr add 198.51.100.7/24 dev h2-eth0")
        h2.cmd(f"ip route add 203.0.113.1/32 dev h2-eth0; "
               f"ip neigh add 203.0.113.1 lladdr {h1.MAC()} dev h2-eth0")
        h1.cmd(f"ip route add 198.51.100.0/24 dev h1-eth0; "
               f"ip neigh add 198.51.100.7 lladdr {h2.MAC()} dev h1-eth0")
        _wait_for(grpc)
        example = (ROOT / "examples" / "p4ctl.yaml").read_text()
        config = tmp_path / "p4ctl.yaml"
        text = (example.replace("127.0.0.1:9559", grpc)
                .replace("hold_mode: false", "hold_mode: true")
                .replace("address: 127.0.0.1:9100", "address: null"))
        if bmv2:  # BMv2's P4Runtime server has no registers: its Thrift API does them
            text = text.replace("registers: p4runtime ", "registers: thrift ").replace(
                "# thrift_address: 127.0.0.1:9090", f"thrift_address: 127.0.0.1:{thrift}")
        config.write_text(text)
        with open(tmp_path / "controller.log", "w") as log:
            controller = subprocess.Popen([sys.executable, "-m", "p4ctl.cli", "run",
                                           "--config", str(config)], cwd=ROOT, stdout=log,
                                          stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "ready (primary)" not in (tmp_path / "controller.log").read_text():
            assert controller.poll() is None, (tmp_path / "controller.log").read_text()
            assert time.monotonic() < deadline, "the controller never became ready"
            time.sleep(0.1)
        yield net, config
    finally:
        try:
            if controller is not None:
                _end(controller)
        finally:
            net.stop()


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process: politely, then not."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


SERVER = """
import socket, sys
kind = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2])))
if kind == "tcp":
    s.listen(1)
    c, peer = s.accept()
    c.sendall(c.recv(100) + b" from " + peer[0].encode())
    c.close()
else:
    data, peer = s.recvfrom(100)
    s.sendto(data + b" from " + peer[0].encode(), peer)
"""

CLIENT = """
import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
s.settimeout(10)
if kind == "tcp":
    s.connect((host, port))
    s.sendall(b"hello")
    print(s.recv(100).decode())
else:
    s.sendto(b"hello", (host, port))
    print(s.recvfrom(100)[0].decode())
"""


def _exchange(net: Any, kind: str, host: str, port: int) -> str:
    h1, h2 = net.get("h1"), net.get("h2")
    server = h2.popen([HOST_PYTHON, "-c", SERVER, kind, str(port)])
    try:
        time.sleep(0.5)  # listening
        client = h1.popen([HOST_PYTHON, "-c", CLIENT, kind, host, str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = client.communicate(timeout=30)
        return out.decode().strip()
    finally:
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_hosts_ping_connect_and_exchange_through_the_controlled_switch(
    network: tuple[Any, Path],
) -> None:
    net, config = network
    h1 = net.get("h1")
    # hold mode: the first echo request waits for its flow and is not lost
    out = h1.cmd("ping -c 3 -i 0.2 -W 5 10.0.0.2")
    assert " 0% packet loss" in out, out
    # TCP through the outbound source NAT: h2 sees h1 as 203.0.113.1
    assert _exchange(net, "tcp", "198.51.100.7", 8000) == "hello from 203.0.113.1"
    assert _exchange(net, "udp", "10.0.0.2", 5353) == "hello from 10.0.0.1"
    flows = subprocess.run([sys.executable, "-m", "p4ctl.cli", "flows", "--config", str(config)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert flows.returncode == 0, flows.stderr
    # both directions of each session, with the packets they carried; ICMP
    # echo is keyed on its identifier, the NAT pair on the translated tuple
    for pattern in (r"vrf 0 10\.0\.0\.1:(\d+) -> 10\.0\.0\.2:\1 proto 1 +forward\(2\)",
                    r"vrf 0 10\.0\.0\.2:(\d+) -> 10\.0\.0\.1:\1 proto 1 +forward\(1\)",
                    r"vrf 0 10\.0\.0\.1:(\d+) -> 198\.51\.100\.7:8000 proto 6 +"
                    r"nat\(2, 203\.0\.113\.1:\1 -> 198\.51\.100\.7:8000\)",
                    r"vrf 0 198\.51\.100\.7:8000 -> 203\.0\.113\.1:(\d+) proto 6 +"
                    r"nat\(1, 198\.51\.100\.7:8000 -> 10\.0\.0\.1:\1\)",
                    r"vrf 0 10\.0\.0\.1:\d+ -> 10\.0\.0\.2:5353 proto 17 +forward\(2\)",
                    r"vrf 0 10\.0\.0\.2:5353 -> 10\.0\.0\.1:\d+ proto 17 +forward\(1\)"):
        line = next((x for x in flows.stdout.splitlines() if re.search(pattern, x)), None)
        assert line is not None, f"{pattern} not in\n{flows.stdout}"
        assert int(line.split()[1]) >= 1, line  # packets went through it
    assert flows.stdout.endswith("(6 entries shown)\n"), flows.stdout
