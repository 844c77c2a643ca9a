"""OpenVINO rows beside ONNX Runtime and LiteRT for the same models (docs/BENCHMARKS.md).

``run FOLDER --name NAME`` takes a model folder made by ``scripts/benchmarks/bench_models.py``
(a ``.keras`` model and its TFLite and ONNX exports) and

1. exports ``openvino-fp32`` and ``openvino-int8`` into it with ``edgeproof export``'s own
   function, calibrated like the folder's other int8 files (the dataset's train split,
   ``--calib-size`` images), unless they are there already;
2. runs ``edgeproof bench`` at batch 1 against the ``.keras`` reference on ``--limit`` test
   images, threads auto-tuned, one worker per artifact: the TFLite files on LiteRT, the
   ONNX files on ONNX Runtime, the IRs on OpenVINO (its default here: ``precision=f32``),
   then the variants: the IRs at ``precision=default`` (what OpenVINO picks by itself on
   this CPU, bf16 where it has bf16 units), ``openvino-fp32`` with ``streams=2``, and the
   ONNX files read by OpenVINO (``--runtime openvino``; the QDQ file runs as int8);
3. keeps the lowest p50 of each row over ``--repeat`` runs and writes
   ``docs/benchmarks/openvino/NAME.json``: the rows (with the precision OpenVINO read
   back from the compiled model), the commands, the CPU (model name and ISA flags:
   avx512_vnni, avx512_bf16, amx), the versions and the date.

``render`` prints the Markdown table of every such file (for docs/BENCHMARKS.md).
``smoke`` runs the whole thing on a tiny model (small_cnn, digits at 16 px, 1 epoch) in a
temporary folder, to check the script, and keeps nothing.

Usage:
    python scripts/benchmarks/bench_models.py flowers_cnn_dropout --out /work/bm/flowers_cnn_dropout
    python scripts/benchmarks/openvino_rows.py run /work/bm/flowers_cnn_dropout \\
        --name flowers_cnn_dropout
    python scripts/benchmarks/openvino_rows.py render
    python scripts/benchmarks/openvino_rows.py smoke
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "docs" / "benchmarks" / "openvino"
FLOWERS = ROOT.parent / "shared" / "datasets" / "flowers"
OPENVINO_FORMATS = ("openvino-fp32", "openvino-int8")
COMPARED = ("tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8", *OPENVINO_FORMATS)
ENV_KEYS = ("cpu", "cores", "isa", "python", "tensorflow", "onnxruntime", "ai_edge_litert",
            "openvino")


def export_openvino(folder: Path, dataset: str, calib_size: int) -> list[str]:
    """Write the folder's missing OpenVINO IRs from its .keras model; returns their notes."""
    from edgeproof.app.export_and_check import ExportConfig, export_and_check

    keras = _keras(folder)
    stem = keras.name[:-len("-keras.keras")] if keras.name.endswith("-keras.keras") else keras.stem
    missing = [f for f in OPENVINO_FORMATS if not (folder / f"{stem}-{f}.xml").exists()]
    if not missing:
        return []
    result = export_and_check(ExportConfig(model=str(keras), formats=missing, out=str(folder),
                                           calib=dataset, calib_size=calib_size, name=stem),
                              status=print)
    if result.errors:
        raise SystemExit("export failed: " + " | ".join(result.errors))
    return [f"{r.format}: top-1 agreement {r.top1_agreement}" for r in result.rows]


def _keras(folder: Path) -> Path:
    found = sorted(folder.glob("*-keras.keras")) or sorted(folder.glob("*.keras"))
    if not found:
        raise SystemExit(f"{folder} has no .keras model: make it with bench_models.py")
    return found[0]


def _file(folder: Path, fmt: str) -> str | None:
    found = sorted(folder.glob(f"*-{fmt}.*"))
    found = [p for p in found if not p.name.endswith((".json", ".bin"))]
    return str(found[0]) if found else None


def settings(folder: Path, dataset: str, limit: int) -> list[tuple[str, list[str]]]:
    """(variant, argv) of each ``edgeproof bench`` call for one model folder."""
    files = {f: _file(folder, f) for f in COMPARED}
    irs = [files[f] for f in OPENVINO_FORMATS if files[f]]
    onnx = [files[f] for f in ("onnx-fp32", "onnx-int8") if files[f]]
    data = ["--dataset", dataset, "--limit", str(limit), "--reference", str(_keras(folder)),
            "--batch-sizes", "1"]
    out = [("default", [*[p for p in files.values() if p], *data])]
    out.append(("precision=default", [*irs, *data, "--runtime-option", "precision=default"]))
    if files["openvino-fp32"]:
        out.append(("streams=2", [files["openvino-fp32"], *data, "--runtime-option",
                                  "streams=2"]))
    if onnx:
        out.append(("onnx on openvino", [*onnx, *data, "--runtime", "openvino"]))
    return out


def slim(row: dict, variant: str) -> dict:
    """The fields the table shows, from one report row."""
    details = row.get("runtime_details") or {}
    lat = row.get("latency_ms") or {}
    return {"format": row.get("format"), "runtime": row.get("runtime"), "variant": variant,
            "precision": details.get("precision"),
            "inference_precision_hint": details.get("inference_precision_hint"),
            "providers": row.get("providers"), "size_bytes": row.get("size_bytes"),
            "accuracy": row.get("accuracy"), "top1_agreement": row.get("top1_agreement"),
            "max_abs_diff": row.get("max_abs_diff"), "threads": row.get("threads"),
            "p50_ms": lat.get("p50"), "p50_ci": lat.get("p50_ci"), "status": row.get("status"),
            "error": row.get("error")}


def run_setting(argv: list[str], out: Path) -> list[dict]:
    # Run outside the checkout: `-m edgeproof` inside it would import its edgeproof/
    # folder instead of the installed package.
    subprocess.run([sys.executable, "-m", "edgeproof", "bench", *argv, "--quiet", "--out",
                    str(out)], cwd=out.parent, check=False, stdout=subprocess.DEVNULL)
    report = out / "report.json"
    return json.loads(report.read_text())["results"] if report.exists() else []


def measure(folder: Path, name: str, dataset: str, limit: int, repeat: int,
            calib_size: int) -> dict:
    """Export what is missing, run every setting ``repeat`` times, keep the best p50s."""
    notes = export_openvino(folder, dataset, calib_size)
    best: dict[tuple, dict] = {}
    commands = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (variant, argv) in enumerate(settings(folder, dataset, limit)):
            commands.append("edgeproof bench " + shlex.join(argv))
            for rep in range(repeat):
                for row in run_setting(argv, Path(tmp) / f"s{i}-r{rep}"):
                    key = (row.get("format"), row.get("runtime"), variant)
                    p50 = (row.get("latency_ms") or {}).get("p50") or float("inf")
                    if key not in best or p50 < (best[key]["p50_ms"] or float("inf")):
                        best[key] = slim(row, variant)
    from edgeproof.bench.env import environment

    env = environment()
    return {"name": name, "created": datetime.date.today().isoformat(),
            "machine": platform.node(), "repeat": repeat, "limit": limit, "dataset": dataset,
            "export_notes": notes, "commands": commands,
            "env": {k: env.get(k) for k in ENV_KEYS},
            "rows": sorted(best.values(), key=lambda r: (r["format"] or "", r["runtime"] or "",
                                                         r["variant"]))}


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def render(folder: Path = DATA) -> list[str]:
    """Markdown: one table per kept file, the CPU and its ISA flags named above it."""
    lines = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        doc = json.loads(path.read_text())
        env = doc["env"]
        lines += [f"### {doc['name']}: ONNX Runtime, LiteRT and OpenVINO", "",
                  f"{env['cpu']} ({env['cores']} cores; {', '.join(env['isa'])}), "
                  f"{doc['created']}, batch 1, best p50 of {doc['repeat']}, {doc['limit']} "
                  f"test images; OpenVINO {env['openvino']}, ONNX Runtime {env['onnxruntime']}, "
                  f"LiteRT {env['ai_edge_litert']}. `precision` is what OpenVINO read back from "
                  "the compiled model.", "",
                  "| format | runtime | setting | precision | threads | p50 ms [95% CI] | "
                  "top-1 agree | max abs dp |", "|---|---|---|---|---|---|---|---|"]
        for r in doc["rows"]:
            ci = r["p50_ci"]
            p50 = "-" if r["p50_ms"] is None else (f"{r['p50_ms']:.4g}" + (
                f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""))
            diff = "-" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}"
            status = "" if r["status"] == "ok" else f" (failed: {r['error']})"
            lines.append(f"| {r['format']} | {r['runtime']} | {r['variant']} | "
                         f"{r['precision'] or '-'} | {r['threads']} | {p50}{status} | "
                         f"{_pct(r['top1_agreement'])} | {diff} |")
        lines += ["", "Commands: " + "; ".join(f"`{c}`" for c in doc["commands"]), ""]
    return lines


def smoke() -> int:
    """The whole script on a tiny model in a temporary folder (nothing kept)."""
    from edgeproof.app.export_and_check import ExportConfig, export_and_check
    from edgeproof.app.train_job import TrainJob, train_to_folder
    from edgeproof.toolkit.train import TrainConfig

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tiny"
        job = TrainJob(dataset="digits", model="small_cnn", out=str(folder), image_size=16,
                       weights="none", config=TrainConfig(epochs=1, batch_size=64, verbose=0),
                       force=True)
        model = train_to_folder(job)["model_path"]
        export_and_check(ExportConfig(model=model, formats=["keras", *COMPARED[:4]],
                                      out=str(folder), calib="digits", calib_size=50,
                                      name="tiny"))
        doc = measure(folder, "smoke", "digits", 40, 1, 50)
        print("\n".join(render_doc(doc, Path(tmp))))
        bad = [r for r in doc["rows"] if r["status"] != "ok"]
        runtimes = {r["runtime"] for r in doc["rows"]}
    print(f"{len(doc['rows'])} rows, runtimes {sorted(runtimes)}, {len(bad)} failed")
    return 0 if not bad and {"litert", "onnxruntime", "openvino"} <= runtimes else 1


def render_doc(doc: dict, scratch: Path) -> list[str]:
    """``render`` of one document not yet kept."""
    folder = scratch / "render"
    folder.mkdir(exist_ok=True)
    (folder / "doc.json").write_text(json.dumps(doc))
    return render(folder)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("folder", type=Path)
    r.add_argument("--name", required=True)
    r.add_argument("--dataset", default=str(FLOWERS))
    r.add_argument("--limit", type=int, default=200)
    r.add_argument("--repeat", type=int, default=2)
    r.add_argument("--calib-size", type=int, default=100)
    r.add_argument("--out", type=Path, default=None,
                   help="default docs/benchmarks/openvino/NAME.json")
    sub.add_parser("render")
    sub.add_parser("smoke")
    a = p.parse_args(argv)
    if a.cmd == "smoke":
        return smoke()
    if a.cmd == "render":
        print("\n".join(render()))
        return 0
    doc = measure(a.folder.resolve(), a.name, a.dataset, a.limit, a.repeat, a.calib_size)
    doc["command"] = "python scripts/benchmarks/openvino_rows.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    out = a.out or DATA / f"{a.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
