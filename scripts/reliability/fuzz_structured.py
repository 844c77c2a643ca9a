"""Structure-aware fuzzing of files without a manifest, through the real CLI.

A file a user hands to ``edgeproof bench`` or ``predict`` without the manifest edgeproof
writes skips the sha256 check, so the native loaders meet whatever it contains. Each case
here is a *valid* TFLite flatbuffer or ONNX protobuf (it parses) with one hostile value:
huge, zero or negative dimensions, tensor / buffer / opcode indices out of range,
truncated or mismatched weight buffers, broken quantization parameters, unknown ops,
impossible attributes. Every mutant goes through ``edgeproof.cli.main.main`` in this
process: ``bench`` (a worker per artifact; a native crash there must become a failed row)
and ``predict`` (which loads in the CLI's process after a sandboxed probe). A crash of
this process is the failure being hunted: the caller sees its exit code.

Outcomes per case: ``row`` (bench wrote a row: ok or failed), ``refused`` (a one-line
``edgeproof: error``, exit 1 or 2), ``ran`` (predict printed a result), ``unclean``
(a traceback, a multi-line error, or another exit code).

Usage:
    python scripts/reliability/fuzz_structured.py MODEL.tflite --cases 1000 --through bench --json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from edgeproof.cli.main import main as cli
from edgeproof.embedded import LEGACY_KEYS, MANIFEST_KEY, tflite_schema

HOSTILE_DIMS = (0, -1, -7, 2**31 - 1, 2**20, 3)


def _tflite_mutants(data: bytes, rng: random.Random):
    fb = tflite_schema()
    import flatbuffers

    def pack(model) -> bytes:
        b = flatbuffers.Builder(len(data) + 4096)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    def fresh():
        m = fb.ModelT.InitFromPackedBuf(bytearray(data), 0)
        m.metadata = [x for x in (m.metadata or []) if (x.name.decode() if isinstance(
            x.name, bytes) else x.name) not in (MANIFEST_KEY, *LEGACY_KEYS)]
        return m

    kinds = ("shape", "op_index", "buffer_index", "buffer_data", "opcode", "io_index", "quant")
    while True:
        m, kind = fresh(), rng.choice(kinds)
        g = m.subgraphs[0]
        t = rng.choice(g.tensors)
        if kind == "shape" and t.shape is not None and len(t.shape):
            t.shape = np.array(t.shape)
            t.shape[rng.randrange(len(t.shape))] = rng.choice(HOSTILE_DIMS)
        elif kind == "op_index":
            op = rng.choice(g.operators)
            arr = op.inputs if rng.random() < 0.5 else op.outputs
            arr[rng.randrange(len(arr))] = rng.choice((len(g.tensors) + rng.randrange(1, 50), -7))
        elif kind == "buffer_index":
            t.buffer = rng.choice((len(m.buffers) + rng.randrange(1, 50), 0))
        elif kind == "buffer_data":
            with_data = [b for b in m.buffers if b.data is not None and len(b.data)]
            if with_data:
                b = rng.choice(with_data)
                b.data = b.data[: rng.randrange(len(b.data))]
        elif kind == "opcode":
            rng.choice(g.operators).opcodeIndex = len(m.operatorCodes) + rng.randrange(1, 9)
        elif kind == "io_index":
            g.inputs = np.array([rng.choice((len(g.tensors) + 3, -1))])
        elif kind == "quant" and t.quantization is not None and t.quantization.scale is not None:
            t.quantization.scale = np.array([rng.choice((0.0, -1.0, float("nan"), 1e38))],
                                            np.float32)
        yield kind, pack(m)


def _onnx_mutants(data: bytes, rng: random.Random):
    import onnx

    kinds = ("input_dim", "node_input", "init_dims", "attribute", "opset", "op_type", "init_type")
    while True:
        m, kind = onnx.load_from_string(data), rng.choice(kinds)
        del m.metadata_props[:]
        g = m.graph
        if kind == "input_dim":
            dims = g.input[0].type.tensor_type.shape.dim
            dims[rng.randrange(len(dims))].dim_value = rng.choice(HOSTILE_DIMS)
        elif kind == "node_input":
            node = rng.choice(g.node)
            node.input[rng.randrange(len(node.input))] = "does_not_exist"
        elif kind == "init_dims" and len(g.initializer):
            init = rng.choice(g.initializer)
            if len(init.dims):
                init.dims[rng.randrange(len(init.dims))] = rng.choice(HOSTILE_DIMS[1:])
        elif kind == "attribute":
            nodes = [n for n in g.node if any(a.ints for a in n.attribute)]
            if nodes:
                attr = next(a for a in rng.choice(nodes).attribute if a.ints)
                attr.ints[rng.randrange(len(attr.ints))] = rng.choice((0, -5, 2**31 - 1))
        elif kind == "opset":
            m.opset_import[0].version = rng.choice((1, 999))
        elif kind == "op_type":
            rng.choice(g.node).op_type = "NoSuchOp"
        elif kind == "init_type" and len(g.initializer):
            rng.choice(g.initializer).data_type = rng.choice((2, 7, 11, 16))
        yield kind, m.SerializeToString()


def _call(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli(argv)
        except SystemExit as e:  # argparse
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


def classify(through: str, code: int, out: str, err: str, report: Path) -> str:
    if "Traceback" in err or code not in (0, 1, 2, 3):
        return "unclean"
    errors = [ln for ln in err.splitlines() if ln.startswith("edgeproof: ")]
    if code == 3 or len([ln for ln in err.splitlines() if ln.strip()]) > max(1, len(errors)):
        return "unclean"  # an internal error, or more than the one-line message
    if through == "bench" and report.exists():
        return "row"
    if code == 0:
        return "ran"
    return "refused" if errors else "unclean"


def fuzz(artifact: Path, cases: int, seed: int, through: str) -> dict:
    rng, data = random.Random(seed), artifact.read_bytes()
    mutants = _tflite_mutants(data, rng) if artifact.suffix == ".tflite" else \
        _onnx_mutants(data, rng)
    outcomes, kinds, unclean = Counter(), Counter(), []
    with tempfile.TemporaryDirectory() as d:
        image = Path(d) / "image.png"
        from PIL import Image

        Image.fromarray(np.zeros((16, 16), np.uint8)).save(image)
        for i in range(cases):
            kind, blob = next(mutants)
            target = Path(d) / f"mutant{artifact.suffix}"
            target.write_bytes(blob)
            report = Path(d) / "report.json"
            report.unlink(missing_ok=True)
            argv = (["bench", str(target), "--quiet", "--threads", "1", "--min-runs", "1",
                     "--min-seconds", "0", "--warmup-runs", "1", "--warmup-seconds", "0",
                     "--json", str(report)] if through == "bench" else
                    ["predict", str(target), str(image), "--preprocess", "scale=1/255"])
            outcome = classify(through, *_call(argv), report)
            outcomes[outcome] += 1
            kinds[kind] += 1
            if outcome == "unclean":
                unclean.append({"case": i, "kind": kind})
    return {"artifact": artifact.name, "through": through, "cases": cases, "seed": seed,
            "mutations": dict(kinds), "outcomes": dict(outcomes), "unclean": unclean[:20]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("artifact", type=Path, help="a valid .tflite or .onnx to mutate")
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--through", choices=("bench", "predict"), default="bench")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    result = fuzz(a.artifact, a.cases, a.seed, a.through)
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
