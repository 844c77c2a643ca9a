"""What every kept measurement carries: the command that made it, the date, the machine.

The scripts in this folder write small JSON files beside the docs they back; each starts
with :func:`provenance` and is written by :func:`write_json`, so that a reader (and the
docs tests) can always tell what ran, where and when.

Example:
    >>> doc = {**provenance("scripts/benchmarks/bench_knobs.py", ["--out", "x.json"]), "rows": []}
    >>> sorted(doc)[:3]
    ['command', 'created', 'env']
"""

from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path

from edgeproof.bench.env import environment


def provenance(script: str, argv: list[str]) -> dict:
    """``{command, created, machine, env}`` for a run of ``script`` with ``argv``."""
    env = environment()
    return {"command": "python " + " ".join([script, *argv]),
            "created": datetime.date.today().isoformat(), "machine": platform.node(),
            "env": {k: env.get(k) for k in ("cpu", "cores", "isa", "python", "tensorflow",
                                             "onnxruntime", "ai_edge_litert")}}


def write_json(path: Path, doc: dict) -> None:
    """``doc`` as indented JSON at ``path`` (folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")


def model_calib_args(doc: str, argv=None, extra=None):
    """The int8 scripts' shared command line: MODEL --calib DATA --out FILE.json (``extra``
    adds a script's own options to the parser first).

    Example:
        >>> model_calib_args("x.", ["m.keras", "--calib", "d.npz", "--out", "o.json"]).calib
        'd.npz'
    """
    import argparse

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--calib", required=True)
    p.add_argument("--out", required=True, type=Path)
    if extra:
        extra(p)
    return p.parse_args(argv)
