"""Render docs/BENCHMARKS.md from docs/benchmarks/*.json (see scripts/benchmarks/bench_docs.py).

Every figure on the page, in tables and prose, is computed here from the kept data.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

MODELS = (("flowers_cnn_dropout", "flowers_cnn_dropout, 150 px (trained 3 epochs on the "
                                  "shared flowers)"),
          ("inception_v3", "InceptionV3 transfer model, 150 px (random init)"),
          ("resnet50", "ResNet50 transfer model, 224 px (random init)"))
HEAD = ("| format | runtime | ran on | threads | batch | size MB | accuracy | top-1 agree | "
        "max abs dp | p50 ms | p90 ms | img/s | load ms | builtin ops | bare ratio |")


def _f(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _row(r: dict) -> str:
    lat, det = r.get("latency_ms") or {}, r.get("details") or {}
    ran = ",".join(p.replace("ExecutionProvider", "") for p in r.get("providers") or []) or "-"
    runtime = r["runtime"] + ("" if r["variant"] == "default" else f" {r['variant']}")
    ops = ", ".join(f"{k} {v}" for k, v in (det.get("builtin_ops") or {}).items()) \
        if r["runtime"] == "litert" and r["variant"] == "default" else ""
    if r["runtime"] == "litert" and r["variant"] == "default" and "delegate_nodes" in det:
        ops = f"{det['delegate_nodes']} partition(s); " + (ops or "none")
    if r["status"] != "ok":
        return f"| {r['format']} | {runtime} | failed: {r.get('error', '')[:60]} |" + " - |" * 12
    return (f"| {r['format']} | {runtime} | {ran} | {r['threads']} | {r['batch_size']} | "
            f"{_f((r.get('size_bytes') or 0) / 2**20, '.2f')} | {_f(r.get('accuracy'), '.3f')} | "
            f"{_f(r.get('top1_agreement'), '.3f')} | {_f(r.get('max_abs_diff'), '.1e')} | "
            f"{_f(lat.get('p50'), '.2f')} | {_f(lat.get('p90'), '.2f')} | "
            f"{_f(r.get('throughput_ips'), '.1f')} | {_f(r.get('load_ms'), '.0f')} | "
            f"{ops or '-'} | {_f(r.get('bare_ratio'), '.3f')} |")


def p50(doc: dict, fmt: str, runtime: str, batch: int = 1, variant: str = "default"):
    """The p50 of one row of a model's data, or None."""
    for r in doc["rows"]:
        if (r["format"], r["runtime"], r["batch_size"], r["variant"]) == \
                (fmt, runtime, batch, variant) and r["status"] == "ok":
            return r["latency_ms"]["p50"]
    return None


def _ratio(a, b) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def model_section(name: str, title: str, doc: dict) -> list[str]:
    env = doc["env"]
    lines = [f"## {title}", "",
             f"Measured {doc['created']} on `{doc['machine']}` ({env['cpu']}, {env['cores']} "
             f"cores), idle, best p50 of {doc['repeat']} runs per row, each artifact in its own "
             f"worker process, threads auto-tuned; accuracy and agreement against the `.keras` "
             f"export on a seeded sample of {doc['limit']} test images.", "", HEAD,
             "|" + "---|" * 15]
    lines += [_row(r) for r in doc["rows"]]
    lines += ["", "Commands:", "", "```", doc["build"], doc["command"],
              "# which runs (each setting --repeat times):"] + doc["commands"] + ["```", ""]
    return lines


def summary(docs: dict) -> list[str]:
    """The comparisons the issues ask for, each computed from the rows above it."""
    lines = ["## What the tables say", "",
             "| model | tflite-int8 / tflite-dynamic (p50, batch 1) | Keras / tflite-int8 | "
             "onnx-fp32 / onnx-int8 | tflite-int8 XNNPACK partitions | builtin ops in int8 |",
             "|---|---|---|---|---|---|"]
    for name, _ in MODELS:
        doc = docs.get(name)
        if not doc:
            continue
        int8 = next((r for r in doc["rows"] if r["format"] == "tflite-int8" and
                     r["variant"] == "default" and r["batch_size"] == 1), {})
        det = int8.get("details") or {}
        lines.append(
            f"| {name} | {_ratio(p50(doc, 'tflite-int8', 'litert'), p50(doc, 'tflite-dynamic', 'litert'))} | "
            f"{_ratio(p50(doc, 'keras', 'keras'), p50(doc, 'tflite-int8', 'litert'))} | "
            f"{_ratio(p50(doc, 'onnx-fp32', 'onnxruntime'), p50(doc, 'onnx-int8', 'onnxruntime'))} | "
            f"{det.get('delegate_nodes', '-')} | "
            f"{', '.join(f'{k} {v}' for k, v in (det.get('builtin_ops') or {}).items()) or 'none'} |")
    sweeps = [(name, r["format"], r["runtime"], r["thread_sweep"]) for name, _ in MODELS
              if name in docs for r in docs[name]["rows"]
              if r.get("thread_sweep") and r["batch_size"] == 1 and r["variant"] == "default"]
    lines += ["", "Thread sweep per artifact (batch 1; the p50 of each setting, the choice in "
              "bold, and what the sweep cost):", "",
              "| model | format | runtime | p50 ms per threads setting | sweep s |",
              "|---|---|---|---|---|"]
    for name, fmt, runtime, s in sweeps:
        best = "default" if s["threads"] is None else str(s["threads"])
        cells = ", ".join(f"**{k}: {v}**" if k == best else f"{k}: {v}"
                          for k, v in s["p50_ms"].items())
        lines.append(f"| {name} | {fmt} | {runtime} | {cells} | {s['seconds']} |")
    return lines + [""]


def knobs_section(doc: dict | None) -> list[str]:
    if not doc:
        return []
    lines = ["## Speed-only knobs", "",
             f"Each setting of each knob in its own worker, best p50 of {doc['repeat']}, batch "
             f"1, threads auto-tuned, {doc['created']}; `max abs dp` is the largest probability "
             "difference from the default setting's outputs on the same 32 images (0: the knob "
             "changes speed only). The defaults of `edgeproof.bench.runtimes` are the fastest "
             "row per runtime that keeps the outputs.", "",
             "| model | format | runtime | setting | threads | p50 ms | vs default | max abs dp |",
             "|---|---|---|---|---|---|---|---|"]
    base = {(r["model"], r["format"]): r.get("p50_ms") for r in doc["records"]
            if r["setting"] == "default"}
    for r in doc["records"]:
        setting = "default" if r["setting"] == "default" else \
            ", ".join(f"{k}={v}" for k, v in r["setting"].items())
        lines.append(f"| {r['model']} | {r['format']} | {r['runtime']} | {setting} | "
                     f"{r.get('threads', '-')} | {_f(r.get('p50_ms'), '.3f')} | "
                     f"{_ratio(r.get('p50_ms'), base.get((r['model'], r['format'])))} | "
                     f"{_f(r.get('max_abs_diff_vs_default'), '.1e')} |")
    return lines + ["", "```", doc["command"], "```", ""]


def bare_section(doc: dict | None) -> list[str]:
    if not doc:
        return []
    lines = ["## Defaults against the fastest bare loop", "",
             "A flowers CNN (150 px) built with plain tf_keras and converted with the libraries "
             "directly (no edgeproof, no manifest): `edgeproof bench FILE` with no flags, "
             "against a bare `invoke()` / `session.run()` loop (a few lines of library code, no "
             f"edgeproof) at every thread setting; best p50 of {doc['repeat']} fresh processes "
             f"each, {doc['created']}.", "",
             "| file | edgeproof p50 ms (threads) | bare loop p50 ms per threads | "
             "edgeproof / fastest bare |", "|---|---|---|---|"]
    for r in doc["rows"]:
        bare = ", ".join(f"{k}: {v:.3f}" for k, v in r["bare_p50_ms"].items())
        lines.append(f"| {r['file']} | {r['edgeproof_p50_ms']:.3f} ({r['edgeproof_threads']}) | "
                     f"{bare} | {r['ratio_to_fastest_bare']:.3f} |")
    return lines + ["", "```", doc["command"], "```", ""]


INTERVAL_RUNS = (("aa", "A/A: one artifact listed twice"),
                 ("repeat", "Three fresh processes per artifact (--repeat 3), interleaved"),
                 ("busy", "The same bench on a busy machine (flagged)"))


def intervals_section(folder: Path) -> list[str]:
    """The interval method, and the kept runs that show it: an A/A run, a --repeat run and
    one on a busy machine (report.json files under docs/benchmarks/intervals/)."""
    runs = [(t, _load(folder / f"{n}.json")) for n, t in INTERVAL_RUNS]
    runs = [(t, r) for t, r in runs if r]
    if not runs:
        return []
    lines = ["## Intervals, repeats and the machine's state", "",
             "Every p50 and p90 carries a 95% confidence interval: "
             f"{runs[0][1]['measurement'].get('interval', 'order statistics')} "
             "(bench/stats.py). Two exports are only called faster or slower when their "
             "intervals do not overlap; otherwise the recommendation treats them as tied and "
             "says \"within noise\". The interval a comparison uses is that 95% interval "
             "widened to every other measurement of the same configuration: the thread "
             "sweep's p50 of the setting it chose (another interpreter instance) and, with "
             "`--repeat N` (N fresh processes per artifact, interleaved), each process's p50. "
             "Between instances a tiny model's latency moves far more than within one (below: "
             "the A/A run's sweep), which is why. Each report records the load average "
             "before and after, the cores busy just before the bench (a CPU-use sample), the "
             "CPU frequency and governor where the OS shows them, and flags a busy machine.",
             ""]
    for title, r in runs:
        env, state = r["env"], r["env"].get("machine_state") or {}
        lines += [f"### {title}", "", f"{env.get('cpu')}, {env.get('cores')} cores, "
                  f"{r['created'][:10]}; load average before {state.get('before', {}).get('load_avg')}"
                  + (f"; **{r['warnings'][0]}**" if r.get("warnings") else "") + ".", "",
                  "| artifact | p50 ms [95% CI] | p90 ms [95% CI] | n | thread sweep p50s | "
                  "per-process p50s |", "|---|---|---|---|---|---|"]
        for row in r["results"]:
            lat = row.get("latency_ms") or {}
            if not lat:
                continue
            reps = (lat.get("repeats") or {}).get("p50_ms")
            sweep = (row.get("thread_sweep") or {}).get("p50_ms") or {}
            lines.append(f"| {Path(row['artifact']).name} | {lat['p50']:.4g} "
                         f"[{lat['p50_ci'][0]:.4g}, {lat['p50_ci'][1]:.4g}] | {lat['p90']:.4g} "
                         f"[{lat['p90_ci'][0]:.4g}, {lat['p90_ci'][1]:.4g}] | {lat['n']} | "
                         f"{', '.join(f'{k}: {v:.4g}' for k, v in sweep.items()) or '-'} "
                         f"(ran {row['threads']}) | "
                         f"{', '.join(f'{v:.4g}' for v in reps) if reps else '-'} |")
        rec = r.get("recommendation")
        lines += ["", f"Recommendation: {rec['why']}." if rec else "", "", "```",
                  r["command"], "```", ""]
    return lines


def devices_section(doc: dict | None) -> list[str]:
    """One bench over two devices: this machine and the same files over SSH
    (docs/benchmarks/devices/local-and-ssh.json)."""
    if not doc:
        return []
    from edgeproof.bench.recommend import interval
    from edgeproof.bench.row import BenchRow

    lines = ["## Two devices in one table: here and over SSH", "",
             "The same two files measured here (`local`) and over SSH (`edgetest`: an OpenSSH "
             "server on 127.0.0.1 whose Python is a virtual environment with only numpy, "
             "ai-edge-litert and onnxruntime, no TensorFlow, no edgeproof), 500 CIFAR-10 test "
             f"images, `--repeat 2`, {doc['created'][:10]}, {doc['env']['cpu']}. Accuracy and "
             "agreement come out identical; the p50s agree within their intervals.", "",
             "| file | device | accuracy | top-1 agree | p50 ms [95% CI] | comparison interval |",
             "|---|---|---|---|---|---|"]
    for row in doc["results"]:
        r, lat = BenchRow.from_dict(row), row["latency_ms"]
        lo, hi = interval(r)
        lines.append(f"| {Path(row['artifact']).name} | {row['device_id']} | "
                     f"{100 * row['accuracy']:.2f}% | {100 * row['top1_agreement']:.2f}% | "
                     f"{lat['p50']:.4g} [{lat['p50_ci'][0]:.4g}, {lat['p50_ci'][1]:.4g}] | "
                     f"{lo:.4g}–{hi:.4g} |")
    return lines + ["", "```", doc["command"], "```", ""]


def openvino_section(record: Path) -> list[str]:
    """OpenVINO beside ONNX Runtime and LiteRT on one PyTorch CNN: the rows of
    docs/EXPORT.md's PyTorch record (scripts/export/pytorch_table.py's ``side_by_side``)."""
    if not record.exists():
        return []
    spec = importlib.util.spec_from_file_location(
        "pytorch_table", Path(__file__).resolve().parents[1] / "export" / "pytorch_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    intro = (Path(__file__).parent / "bench_docs_openvino.md").read_text().rstrip()
    return [intro, "", table.side_by_side(json.loads(record.read_text())), ""]


def gpu_section(folder: Path) -> list[str]:
    """ONNX Runtime on CUDA and TensorRT (scripts/benchmarks/gpu_check.sh), when measured."""
    docs = [_load(p) for p in sorted(folder.glob("*.json"))] if folder.exists() else []
    lines = []
    for doc in docs:
        lines += [f"## GPU: {doc['gpu']['name']}", "",
                  f"{doc['onnxruntime']}, driver {doc['gpu']['driver']}, {doc['date']}; "
                  f"intervals: {doc['interval']}.", "",
                  "| model | provider (what ran) | batch | p50 ms [95% CI] | p90 ms | images/s |",
                  "|---|---|---|---|---|---|"]
        for r in doc["rows"]:
            if "error" in r:
                lines.append(f"| {r['model']} | {r['provider']} | - | failed: {r['error']} | | |")
                continue
            lines.append(f"| {r['model']} | {r['provider']} ({','.join(r['providers_used'])}) | "
                         f"{r['batch']} | {r['p50_ms']:.4g} [{r['p50_ci'][0]:.4g}, "
                         f"{r['p50_ci'][1]:.4g}] | {r['p90_ms']:.4g} | {r['images_per_s']} |")
        lines += ["", "```", doc["command"], "```", ""]
    return lines


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def render(data: Path) -> str:
    """The whole page from the JSON files in ``data``."""
    docs = {name: _load(data / f"{name}.json") for name, _ in MODELS}
    docs = {k: v for k, v in docs.items() if v}
    lines = [(Path(__file__).parent / "bench_docs_intro.md").read_text().rstrip(), ""]
    lines += summary(docs)
    lines += bare_section(_load(data / "defaults_vs_bare.json"))
    lines += knobs_section(_load(data / "knobs.json"))
    for name, title in MODELS:
        if name in docs:
            lines += model_section(name, title, docs[name])
    lines += intervals_section(data / "intervals")
    lines += devices_section(_load(data / "devices" / "local-and-ssh.json"))
    lines += openvino_section(data.parent / "evidence" / "pytorch" / "summary.json")
    lines += gpu_section(data / "gpu")
    lines += [(Path(__file__).parent / "bench_docs_outro.md").read_text().rstrip(), ""]
    return "\n".join(lines)
