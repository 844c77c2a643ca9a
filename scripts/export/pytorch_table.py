"""docs/EXPORT.md "Models from PyTorch": a PyTorch CIFAR-10 CNN, trained here by plain
PyTorch, through `edgeproof export` and `edgeproof bench` on the 10,000 test images.

    python scripts/export/pytorch_table.py train --work /tmp/pt      # ~5 min on 2 cores
    python scripts/export/pytorch_table.py run --work /tmp/pt        # export + bench (idle machine)
    python scripts/export/pytorch_table.py render [--check]

``train`` fits a Conv-BN-ReLU CNN with a residual block (NCHW, torchvision's
``Normalize(mean, std)`` of CIFAR-10 in its pipeline) on the 50,000 training images of
../shared/datasets/cifar10.npz and saves it as ``model.pt2`` (torch.export, dynamic batch)
and ``model.pt`` (TorchScript). ``run`` exports every format edgeproof makes from a PyTorch
reference (those installed), benches them with the ``.pt2`` and the TorchScript file as
rows, against the ``.pt2``, and keeps the record in docs/evidence/pytorch/. ``render``
writes the table between the markers in docs/EXPORT.md; docs/BENCHMARKS.md's "OpenVINO
beside ONNX Runtime and LiteRT" comes from the same record (``side_by_side``), written by
``scripts/benchmarks/bench_docs.py render``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evidence import provenance, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10.npz"
RECORD = ROOT / "docs" / "evidence" / "pytorch" / "summary.json"
DOC = ROOT / "docs" / "EXPORT.md"
BEGIN, END = "<!-- pytorch-table:begin -->", "<!-- pytorch-table:end -->"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
PREPROCESS = f"mean={','.join(map(str, MEAN))},std={','.join(map(str, STD))}"
FORMATS = ("onnx-fp32", "onnx-fp16", "onnx-int8", "executorch-fp32", "executorch-int8",
           "tflite-fp32", "tflite-dynamic", "tflite-int8", "openvino-fp32", "openvino-int8")

TRAIN = r'''
import sys, time, numpy as np, torch, torch.nn as nn
out, epochs = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
d = np.load(sys.argv[3])
mean, std = np.array(%(mean)r, np.float32), np.array(%(std)r, np.float32)
def prep(x):
    return torch.from_numpy(np.ascontiguousarray(((x / 255.0 - mean) / std).astype(np.float32).transpose(0, 3, 1, 2)))
x, y = prep(d["x_train"]), torch.from_numpy(d["y_train"].ravel().astype(np.int64))
def cbr(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
class Res(nn.Module):
    def __init__(self, c):
        super().__init__(); self.a, self.b = cbr(c, c), nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
    def forward(self, t):
        return torch.relu(t + self.b(self.a(t)))
m = nn.Sequential(cbr(3, 16), nn.MaxPool2d(2), Res(16), cbr(16, 32), nn.MaxPool2d(2), Res(32),
                  cbr(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
opt = torch.optim.SGD(m.parameters(), 0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
steps = epochs * (len(x) // 128)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=steps)
t0 = time.time()
for e in range(epochs):
    m.train(); perm = torch.randperm(len(x))
    for i in range(0, len(x) - 127, 128):
        idx = perm[i:i + 128]; xb = x[idx]
        if True:  # random horizontal flips
            flip = torch.rand(len(xb)) < 0.5; xb[flip] = xb[flip].flip(3)
        opt.zero_grad(); nn.functional.cross_entropy(m(xb), y[idx]).backward(); opt.step(); sched.step()
    print("epoch", e + 1, "of", epochs, round(time.time() - t0), "s", flush=True)
m.eval()
ex = x[:2].clone()  # a slice keeps the whole tensor: torch.export would save all 50,000 images
torch.export.save(torch.export.export(m, (ex,), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},)), out + "/model.pt2")
torch.jit.save(torch.jit.trace(m, ex), out + "/model.pt")
print("trained in", round(time.time() - t0), "s")
'''


def train(work: Path, epochs: int) -> None:
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", TRAIN % {"mean": MEAN, "std": STD}, str(work),
                    str(epochs), str(CIFAR)], check=True)


def _edgeproof(*args) -> None:
    subprocess.run([sys.executable, "-m", "edgeproof", *map(str, args)], check=True, cwd=ROOT)


def _transposes(work: Path, row: dict) -> int | None:
    """TRANSPOSE ops in a litert-torch .tflite (its manifest's count), else None."""
    sidecar = work / "bench" / (row.get("artifact") or "-")
    sidecar = sidecar.with_name(sidecar.name + ".json")
    if not sidecar.is_file():
        return None
    conv = json.loads(sidecar.read_text()).get("conversion") or {}
    return (conv.get("litert_torch") or {}).get("transposes")


def run(work: Path, formats: list[str], argv: list[str]) -> None:
    from edgeproof.export.formats import FORMATS as KNOWN

    formats = [f for f in formats if f in KNOWN]
    exports = work / "exports"
    t0 = time.time()
    _edgeproof("export", work / "model.pt2", "--format", ",".join(formats), "--calib", CIFAR,
               "--preprocess", PREPROCESS, "--out", exports, "--force")
    export_s = time.time() - t0
    files = [p for p in sorted(exports.iterdir()) if p.suffix in (".onnx", ".pte", ".tflite", ".xml")]
    _edgeproof("bench", work / "model.pt2", work / "model.pt", *files, "--reference",
               work / "model.pt2", "--dataset", CIFAR, "--preprocess", PREPROCESS + ",crop=32",
               "--json", work / "bench.json", "--out", work / "bench")
    report = json.loads((work / "bench.json").read_text())
    rows = [{k: r.get(k) for k in ("format", "runtime", "size_bytes", "accuracy",
                                   "top1_agreement", "max_abs_diff", "threads", "status")}
            | {"p50_ms": (r.get("latency_ms") or {}).get("p50"),
               "p50_ci": (r.get("latency_ms") or {}).get("p50_ci"),
               "delegated": (r.get("runtime_details") or {}).get("delegated_share"),
               # what OpenVINO's CPU plugin really computed in (bf16 where the CPU has it)
               "precision": (r.get("runtime_details") or {}).get("precision"),
               "transposes": _transposes(work, r)}
            for r in report["results"]]
    write_json(RECORD, {**provenance("scripts/export/pytorch_table.py", ["run", *argv]),
                        "preprocess": PREPROCESS, "formats": formats, "export_seconds": round(export_s, 1),
                        "images": report["dataset"], "recommendation": report.get("recommendation"),
                        "rows": rows})
    print("wrote", RECORD)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _header(doc: dict) -> str:
    env = doc["env"]
    return (f"Measured on {env['cpu']} ({env['cores']} cores, {', '.join(env['isa'])}), "
            f"{doc['created']}, `{doc['command']}`; record: "
            "[docs/evidence/pytorch/summary.json](evidence/pytorch/summary.json).")


def _cells(r: dict) -> dict:
    ci = r.get("p50_ci") or []
    lat = "-" if r["p50_ms"] is None else f"{r['p50_ms']:.4g}" + \
        (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if len(ci) == 2 else "")
    return {"size": "-" if not r["size_bytes"] else f"{r['size_bytes'] / 1024:.1f} KB",
            "diff": "-" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}",
            "deleg": "-" if r.get("delegated") is None else _pct(r["delegated"]),
            "prec": r.get("precision") or "-", "lat": lat,
            "tr": "-" if r.get("transposes") is None else str(r["transposes"])}


def table(doc: dict) -> str:
    lines = [_header(doc) + " Agreement is top-1 agreement with the `.pt2` run in PyTorch on "
             "the same 10,000 test images; latency is p50 at batch 1 with the thread count "
             "edgeproof's sweep picked; delegated: the share of the graph's operators inside "
             "XNNPACK (ExecuTorch); transposes: TRANSPOSE ops in a litert-torch file; precision: "
             "what OpenVINO's CPU plugin computed in.", "",
             "| format | runtime | size | accuracy | agreement with PyTorch | max \\|Δp\\| | "
             "p50 ms [95% CI] | delegated | transposes | precision | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        c = _cells(r)
        lines.append(f"| {r['format']} | {r['runtime']} | {c['size']} | {_pct(r['accuracy'])} | "
                     f"{_pct(r['top1_agreement'])} | {c['diff']} | {c['lat']} | {c['deleg']} | "
                     f"{c['tr']} | {c['prec']} | {r['status']} |")
    rec = doc.get("recommendation")
    if rec:
        lines += ["", f"bench's pick: **{rec['format']}** on {rec['runtime']}: {rec['why']}."]
    return "\n".join(lines)


RUNTIME_ORDER = ("onnxruntime", "litert", "openvino")


def side_by_side(doc: dict) -> str:
    """BENCHMARKS.md's OpenVINO section: the float and int8 files of the PyTorch CNN on
    ONNX Runtime, LiteRT and OpenVINO, from the same record."""
    rows = sorted((r for r in doc["rows"] if r["runtime"] in RUNTIME_ORDER),
                  key=lambda r: (RUNTIME_ORDER.index(r["runtime"]), r["format"]))
    lines = [_header(doc) + " The PyTorch CIFAR-10 CNN of docs/EXPORT.md, each runtime's own "
             "files, on the 10,000 test images; agreement with PyTorch; p50 at batch 1.", "",
             "| runtime | format | agreement | accuracy | p50 ms [95% CI] | precision | size |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        c = _cells(r)
        lines.append(f"| {r['runtime']} | {r['format']} | {_pct(r['top1_agreement'])} | "
                     f"{_pct(r['accuracy'])} | {c['lat']} | {c['prec']} | {c['size']} |")
    return "\n".join(lines)


# BENCHMARKS.md is rendered whole by scripts/benchmarks/bench_docs.py, which calls
# side_by_side on the same record for its OpenVINO section.
DOCS = ((DOC, BEGIN, END, table),)


def render(check: bool) -> int:
    doc, stale = json.loads(RECORD.read_text()), []
    for path, begin, end, make in DOCS:
        text = path.read_text()
        new = text[:text.index(begin) + len(begin)] + "\n" + make(doc) + "\n" + \
            text[text.index(end):]
        if new != text:
            stale.append(path)
            if not check:
                path.write_text(new)
    if check and stale:
        print("out of date with", RECORD, ":", ", ".join(p.name for p in stale))
        return 1
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--work", type=Path, required=True)
    t.add_argument("--epochs", type=int, default=15)
    r = sub.add_parser("run")
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--formats", default=",".join(FORMATS))
    d = sub.add_parser("render")
    d.add_argument("--check", action="store_true")
    a = p.parse_args(argv)
    if a.cmd == "train":
        train(a.work, a.epochs)
    elif a.cmd == "run":
        run(a.work, a.formats.split(","), argv[1:])
    else:
        return render(a.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
