"""Set-up helpers for the PTF tier: a network namespace with veth pairs, a switch in it, ptf.

The PTF suite (``tests/ptf/flowcache/``) is run by the ``ptf`` command on one
end of each veth pair while a switch (the project's ``p4ctl switch`` or
BMv2's ``simple_switch_grpc``) is attached to the other ends. Everything runs
inside a network namespace of its own, so

* the switch's gRPC and Thrift servers (BMv2's Thrift listens on all
  addresses, port 9090, with no option to change it) are reachable only on
  the namespace's loopback and never clash with anything on the machine;
* deleting the namespace removes every veth pair made here, whatever
  happened to the test (no ``mn -c``, no machine-wide clean-up);
* IPv6 is disabled in the namespace before any interface exists, so the
  kernel sends no router solicitations or MLD reports on the veths that
  ptf's "no other packets" checks would see.

Used by ``tests/ptf/test_ptf_suite.py`` (software switch) and
``tests/bmv2/test_ptf_bmv2.py`` (BMv2).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PTF_TEST_DIR = Path(__file__).resolve().parent / "flowcache"
PIPELINE_DIR = ROOT / "pipelines" / "flowcache"
P4INFO = PIPELINE_DIR / "p4info.txtpb"
BMV2_JSON = PIPELINE_DIR / "bmv2.json"
#: switch ports the suite uses (ptf port N <-> switch port N)
PORTS = (1, 2, 3)
GRPC_ADDR = "127.0.0.1:9559"
THRIFT_ADDR = "127.0.0.1:9090"
CPU_PORT = 255
#: a guard against a hung run, not a timing check (the suite takes well under a minute)
HANG_GUARD_S = 900


def environment_problem() -> str | None:
    """Why this machine cannot run the PTF tier (None when it can)."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces and veth pairs"
    if shutil.which("ip") is None:
        return "needs iproute2's ip command"
    if not (VENV_BIN / "ptf").exists():
        return f"the ptf command is not installed next to {sys.executable}"
    for artifact in (P4INFO, BMV2_JSON):
        if not artifact.exists():
            return f"pipelines/flowcache/{artifact.name} is not committed yet (p4c's output)"
    return None


#: BMv2's P4Runtime switch, for the tiers that run against it (None: not installed)
SIMPLE_SWITCH_GRPC = shutil.which("simple_switch_grpc")


def bmv2_problem() -> str | None:
    """Why this machine cannot run the BMv2 tiers (None when it can)."""
    return environment_problem() or (
        None if SIMPLE_SWITCH_GRPC else "simple_switch_grpc (BMv2) is not on PATH"
    )


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


@dataclass(slots=True)
class Namespace:
    """A network namespace with one veth pair per switch port.

    ``switch_ifs[port]`` is the switch's end, ``ptf_ifs[port]`` the end ptf
    uses. Names are unique per run (interfaces live inside the namespace,
    so they only need to be unique there; the namespace name is unique on
    the machine).
    """

    name: str
    switch_ifs: dict[int, str] = field(default_factory=dict)
    ptf_ifs: dict[int, str] = field(default_factory=dict)

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


@contextlib.contextmanager
def namespace(ports: Sequence[int] = PORTS, prefix: str = "p4ctl-ptf") -> Iterator[Namespace]:
    """A fresh namespace with veth pairs for ``ports``; deleted on exit, even on failure."""
    ns = Namespace(f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}")
    try:
        _ip("netns", "add", ns.name)
    except RuntimeError as exc:  # e.g. a container without CAP_SYS_ADMIN
        pytest.skip(f"cannot create a network namespace: {exc}")
    try:
        # (written from inside the namespace, where /proc/sys/net is the namespace's;
        # no dependence on procps' sysctl)
        disable_ipv6 = (
            "for k in ('all', 'default'):\n"
            "    open(f'/proc/sys/net/ipv6/conf/{k}/disable_ipv6', 'w').write('1')\n"
        )
        subprocess.run(ns.exec_argv([sys.executable, "-c", disable_ipv6]),
                       capture_output=True, check=False)  # fmt: skip
        _ip("-n", ns.name, "link", "set", "lo", "up")
        for port in ports:
            sw, pt = f"sw{port}", f"ptf{port}"
            _ip("-n", ns.name, "link", "add", sw, "type", "veth", "peer", "name", pt)
            for ifname in (sw, pt):
                _ip("-n", ns.name, "link", "set", ifname, "up")
            ns.switch_ifs[port], ns.ptf_ifs[port] = sw, pt
        yield ns
    finally:
        subprocess.run(["ip", "netns", "delete", ns.name], capture_output=True, check=False)


def wait_for_grpc(ns: Namespace, address: str, proc: subprocess.Popen[bytes], log: Path,
                  deadline_s: float = 120.0) -> None:  # fmt: skip
    """Wait until a P4Runtime server answers in ``ns`` (the switch may be loading a JSON).

    Raises with the switch's log when the process dies first; the deadline
    only guards against a switch that never comes up.
    """
    probe = (
        "import sys, grpc\n"
        "ch = grpc.insecure_channel(sys.argv[1])\n"
        "grpc.channel_ready_future(ch).result(timeout=float(sys.argv[2]))\n"
    )
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the switch exited with code {proc.returncode}:\n{_tail(log)}"
            )
        check = subprocess.run(
            ns.exec_argv([sys.executable, "-c", probe, address, "2"]),
            capture_output=True,
            check=False,
        )
        if check.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"no P4Runtime server on {address} after {deadline_s} s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def running(argv: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` with its output in ``log``; on exit SIGTERM it (then SIGKILL) by its pid."""
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass(slots=True)
class PtfResult:
    """What one ptf run reported."""

    returncode: int
    output: str
    #: test name -> "ok", "FAIL", "ERROR", "skipped ..."
    outcomes: dict[str, str]
    ran: int | None

    def summary(self) -> str:
        return "\n".join(f"{name}: {status}" for name, status in self.outcomes.items())


# unittest's verbose runner (ptf runs one): "<module.Class> ... ok" per test,
# then "Ran N tests in Xs".
_OUTCOME = re.compile(
    r"^(?P<name>[\w.]+) \.\.\. (?P<status>ok|FAIL|ERROR|skipped.*|expected failure"
    r"|unexpected success)$",
    re.MULTILINE,
)
_RAN = re.compile(r"^Ran (\d+) tests? in ", re.MULTILINE)


def parse_ptf_output(returncode: int, output: str) -> PtfResult:
    outcomes = {m["name"]: m["status"] for m in _OUTCOME.finditer(output)}
    ran = _RAN.search(output)
    return PtfResult(returncode, output, outcomes, int(ran.group(1)) if ran else None)


def list_ptf_tests(ns: Namespace, work_dir: Path) -> list[str]:
    """Every test name of the suite, as ptf would run them (``module.Class``)."""
    argv = [str(VENV_BIN / "ptf"), "--test-dir", str(PTF_TEST_DIR), "--list-test-names",
            "--log-file", str(work_dir / "ptf-list.log")]  # fmt: skip
    proc = subprocess.run(
        ns.exec_argv(argv),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ptf --list-test-names failed:\n{proc.stdout}\n{proc.stderr}")
    return [line.strip() for line in proc.stdout.splitlines() if re.fullmatch(r"[\w.]+",
                                                                                line.strip())]


def suite_params(registers: str) -> dict[str, object]:
    """The suite's test parameters for the switch in the namespace: the committed
    pipeline, pushed by the suite, and overflow registers written through
    ``registers`` ("p4runtime" or "thrift")."""
    return {
        "grpc_addr": GRPC_ADDR,
        "device_id": 1,
        "p4info": str(P4INFO),
        "bmv2_json": str(BMV2_JSON),
        "registers": registers,
        "thrift_addr": THRIFT_ADDR,
    }


def run_ptf(ns: Namespace, params: dict[str, object], work_dir: Path,
            extra: Sequence[str] = ()) -> PtfResult:  # fmt: skip
    """Run the flow-cache PTF suite in ``ns`` against the switch on the other veth ends.

    ptf's logs (one per test) go to ``work_dir/ptf-logs``, a folder ptf empties first.
    """
    test_params = ";".join(f"{k}={v!r}" for k, v in params.items())
    argv = [
        str(VENV_BIN / "ptf"),
        "--test-dir", str(PTF_TEST_DIR),
        "--test-params", test_params,
        "--log-dir", str(work_dir / "ptf-logs"),
        # "no other packet" checks wait this long; a Python switch under load
        # (a 2-core machine) needs more than ptf's 0.1 s
        "--default-negative-timeout", "0.5",
        "--default-timeout", "5",
        "--test-case-timeout", "120",
        *extra,
    ]  # fmt: skip
    for port, ifname in ns.ptf_ifs.items():
        argv += ["-i", f"{port}@{ifname}"]
    proc = subprocess.run(
        ns.exec_argv(argv),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=HANG_GUARD_S,
        check=False,
    )
    return parse_ptf_output(proc.returncode, proc.stdout + proc.stderr)


def assert_all_passed(result: PtfResult, expected: Sequence[str]) -> None:
    """ptf exited 0 and every expected test ran and passed."""
    problems = []
    if result.returncode != 0:
        problems.append(f"ptf exited with code {result.returncode}")
    missing = [t for t in expected if t not in result.outcomes]
    if missing:
        problems.append(f"tests that did not run: {', '.join(missing)}")
    failed = {t: s for t, s in result.outcomes.items() if s != "ok"}
    if failed:
        problems.append("tests that did not pass: " + ", ".join(f"{t} ({s})"
                                                                 for t, s in failed.items()))
    if result.ran is not None and result.ran != len(expected):
        problems.append(f"ptf ran {result.ran} tests, the suite has {len(expected)}")
    if problems:
        raise AssertionError("; ".join(problems) + "\n\n" + result.output[-20000:])
