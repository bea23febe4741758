"""Small P4 programs compiled by p4c-bm2-ss, run in the interpreter (skipped without p4c)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from p4ctl.switch import Pipeline
from p4ctl.switch.interp.hashes import hash_function

HERE = Path(__file__).resolve().parent / "p4"
P4C = shutil.which("p4c-bm2-ss")

pytestmark = pytest.mark.skipif(P4C is None, reason="p4c-bm2-ss not on PATH")


def compile_p4(name: str, tmp_path: Path) -> Pipeline:
    out = tmp_path / f"{name}.json"
    subprocess.run([P4C, "--std", "p4-16", "-o", str(out), str(HERE / f"{name}.p4")],
                   check=True, capture_output=True)  # fmt: skip
    return Pipeline.from_json(out.read_bytes())


def test_expression_corner_cases(tmp_path: Path) -> None:
    pipe = compile_p4("ops", tmp_path)
    a, b, s, w = 200, 100, -100, 0x0A5B
    pkt = bytes([a, b, s & 0xFF]) + w.to_bytes(2, "big") + b"tail"
    res = pipe.process(pkt, 1)
    assert res.outputs == [(2, pkt)]
    ((name, values),) = res.digests
    assert name == "result_t"
    crc = hash_function("crc16", "t")(bytes([a, b]))
    expected = (
        (a + b) & 0xFF,  # sum
        255,  # sat
        (a - b) & 0xFF,  # diff
        (-128) & 0xFF,  # ssat: -100 |-| 100 saturates at -128
        (a << 8) | b,  # concat
        0xA,  # slice
        (a << (b & 7)) & 0xFF,  # shifted
        s & 0xFFFF,  # widened (sign-extended)
        ~a & 0xFF,  # notted
        1,  # cmp
        1,  # cond: 200 > 100
        crc,
    )
    assert values == expected
