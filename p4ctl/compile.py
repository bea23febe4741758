"""Compile ``p4src/`` with p4c into the committed ``pipelines/`` artifacts.

``p4ctl compile`` (or ``make pipelines``) regenerates
``pipelines/flowcache/p4info.txtpb`` and ``bmv2.json`` from
``p4src/flowcache_v1model.p4``; ``--check`` compiles into a temporary folder
and reports whether the committed files are p4c's output for the committed
sources. ``--tna`` also compiles the TNA program with p4c's Tofino backend
where that is installed (its outputs are target binaries and are not
committed). p4c is not in the package registries; where it is absent the
command says so and exits 2.

The sources are compiled by relative path from the repository root, so the
JSON's ``source_info`` and ``program`` fields name repository paths only; the
check still compares the JSON without ``source_info`` so that a p4c installed
elsewhere (whose include files would be named) gives the same answer.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
V1MODEL_SOURCE = Path("p4src/flowcache_v1model.p4")
TNA_SOURCE = Path("p4src/flowcache_tna.p4")
ARTIFACTS = Path("pipelines/flowcache")


class P4cMissing(RuntimeError):
    """p4c (or the backend asked for) is not on PATH."""


@dataclass(slots=True, frozen=True)
class Outputs:
    p4info: Path
    bmv2_json: Path


def find_p4c(name: str = "p4c") -> str:
    p4c = shutil.which(name)
    if p4c is None:
        raise P4cMissing(f"{name} is not on PATH (it is built from p4lang/p4c; "
                         "see docs/pipeline.md)")
    return p4c


def compile_v1model(out_dir: Path, repo: Path = REPO) -> Outputs:
    """Run p4c's BMv2 backend (``p4c-bm2-ss``) on the v1model program into ``out_dir``.

    The backend is called directly rather than through the ``p4c`` driver so
    that the JSON's ``program`` field is the source path, not the path of a
    preprocessed file in a temporary folder.
    """
    p4c = find_p4c("p4c-bm2-ss")
    out_dir.mkdir(parents=True, exist_ok=True)
    p4info = out_dir / "p4info.txtpb"
    bmv2_json = out_dir / "bmv2.json"
    cmd = [
        p4c, "--arch", "v1model", "--std", "p4-16",
        "--p4runtime-files", str(p4info), "-o", str(bmv2_json), str(V1MODEL_SOURCE),
    ]
    log.info("running %s", " ".join(cmd))
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"p4c failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    if done.stderr.strip():
        log.debug("p4c: %s", done.stderr.strip())
    return Outputs(p4info, bmv2_json)


def compile_tna(out_dir: Path, repo: Path = REPO) -> Path:
    """Compile the TNA program with p4c's Tofino backend; returns the output folder."""
    p4c = find_p4c()
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        p4c, "--target", "tofino", "--arch", "tna", "--std", "p4-16",
        "--p4runtime-files", str(out_dir / "p4info.txtpb"), "-o", str(out_dir), str(TNA_SOURCE),
    ]
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if "target" in done.stderr and "tofino" in done.stderr:
            raise P4cMissing(f"p4c has no Tofino backend here:\n{done.stderr}")
        raise RuntimeError(f"p4c (tofino) failed ({done.returncode}):\n{done.stderr}")
    return out_dir


def check_tna_frontend(tna_include: Path, repo: Path = REPO) -> None:
    """Type-check the TNA program with p4c's front and mid end (``p4test``).

    ``tna_include`` is the folder holding ``tna.p4`` (p4c's Tofino backend
    sources: ``backends/tofino/bf-p4c/p4include``). This checks the program
    against TNA's extern declarations where the Tofino backend itself is not
    built; it does not allocate resources as p4c-tofino would.
    """
    p4test = find_p4c("p4test")
    cmd = [p4test, "-I", str(tna_include), "-D__TARGET_TOFINO__=1", "--std", "p4-16",
           str(TNA_SOURCE)]
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"p4test (TNA) failed ({done.returncode}):\n{done.stderr}")


def strip_source_info(node: Any) -> Any:
    """The JSON without ``source_info`` (machine-dependent file paths)."""
    if isinstance(node, dict):
        return {k: strip_source_info(v) for k, v in node.items() if k != "source_info"}
    if isinstance(node, list):
        return [strip_source_info(v) for v in node]
    return node


def differences(fresh: Outputs, committed_dir: Path) -> list[str]:
    """Names of the committed artifacts that differ from a fresh compile."""
    diffs = []
    if fresh.p4info.read_text() != (committed_dir / "p4info.txtpb").read_text():
        diffs.append("p4info.txtpb")
    new = strip_source_info(json.loads(fresh.bmv2_json.read_text()))
    old = strip_source_info(json.loads((committed_dir / "bmv2.json").read_text()))
    if new != old:
        diffs.append("bmv2.json")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="p4ctl compile", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="only check that the committed artifacts are current")
    parser.add_argument("--tna", action="store_true",
                        help="also compile the TNA program (needs p4c's Tofino backend)")
    parser.add_argument("--tna-frontend", type=Path, metavar="TNA_INCLUDE",
                        help="also type-check the TNA program with p4test against the tna.p4 "
                             "in this folder")


def run(args: argparse.Namespace) -> int:
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = compile_v1model(Path(tmp) / "v1model")
            if args.check:
                diffs = differences(fresh, REPO / ARTIFACTS)
                if diffs:
                    print(f"out of date: {', '.join(diffs)} (run 'make pipelines')")
                    return 1
                print("pipelines/flowcache is p4c's output for p4src/")
            else:
                shutil.copyfile(fresh.p4info, REPO / ARTIFACTS / "p4info.txtpb")
                shutil.copyfile(fresh.bmv2_json, REPO / ARTIFACTS / "bmv2.json")
                print(f"wrote {ARTIFACTS}/p4info.txtpb and {ARTIFACTS}/bmv2.json")
            if args.tna_frontend:
                check_tna_frontend(args.tna_frontend)
                print("TNA program passes p4c's front and mid end (p4test)")
            if args.tna:
                out = compile_tna(Path(tmp) / "tna")
                print(f"TNA program compiled ({sorted(p.name for p in out.iterdir())})")
    except P4cMissing as exc:
        print(f"p4ctl compile: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"p4ctl compile: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main())
