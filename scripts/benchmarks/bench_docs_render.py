"""Render docs/BENCHMARKS.md from docs/benchmarks/*.json (see scripts/benchmarks/bench_docs.py).

Every figure on the page, in tables and prose, is computed here from the kept data.
"""

from __future__ import annotations

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
    lines += [(Path(__file__).parent / "bench_docs_outro.md").read_text().rstrip(), ""]
    return "\n".join(lines)
