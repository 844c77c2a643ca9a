"""report.json (the contract other tools read) and report.md.

``build_report`` is the one place report.json's dict is assembled, for ``edgeproof bench``
and ``edgeproof run`` alike (run adds its training and evaluation sections). Every table
of report.md comes from the one column spec (``bench.table``: the results, what ran, the
bare-loop check, a microcontroller's figures), as the console and report.html do; the
evaluation's per-class table is written by the same Markdown writer.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from edgeproof import __version__
from edgeproof.bench.env import busy_warning
from edgeproof.bench.row import as_rows
from edgeproof.bench.stats import METHOD
from edgeproof.bench.table import BARE_LOOP, MICRO, WHAT_RAN, markdown, markdown_lines, notes


def build_report(*, command: str | None, dataset: dict, model: dict, results,
                 env: dict, **sections) -> dict:
    """report.json's dict: the stable keys other tools read, then any extra ``sections``
    (``training``, ``evaluation``, ``calibration``, ``measurement``, ``gate``, ...);
    ``results`` are BenchRows (or their dicts), written as dicts.

    Example:
        >>> r = build_report(command="edgeproof bench m.onnx", dataset={}, model={},
        ...                  results=[], env={})
        >>> r["edgeproof_version"] == __version__ and r["results"] == []
        True
    """
    report = {"edgeproof_version": __version__,
              "created": _dt.datetime.now().isoformat(timespec="seconds"),
              "command": command, "dataset": dataset, "model": model, **sections,
              "env": env, "results": [r.to_dict() for r in as_rows(results)]}
    report["warnings"] = [w for w in [busy_warning(report)] if w]
    return report


def recommendation_lines(report: dict) -> list[str]:
    """The recommendation (or why there is none) as Markdown / console lines; one per
    device when the rows come from several.

    Example:
        >>> recommendation_lines({"recommendation_note": "No export passes the gate."})
        ['**No recommendation**: No export passes the gate.', '']
    """
    by_device = report.get("recommendations")
    if by_device:
        return [f"**On {d}: ship {r['format']} on {r['runtime']}** (`{r['artifact']}`): "
                f"{r['why']}." if r else f"**On {d}: no export passes the gate.**"
                for d, r in by_device.items()] + [""]
    rec = report.get("recommendation")
    if rec:
        return [f"**Ship {rec['format']} on {rec['runtime']}** (`{rec['artifact']}`): "
                f"{rec['why']}.", ""]
    if report.get("recommendation_note"):
        return [f"**No recommendation**: {report['recommendation_note']}", ""]
    return []


def to_markdown(report: dict) -> str:
    ds, model, env = report["dataset"], report["model"], report["env"]
    lines = [f"# edgeproof report — {model.get('name')} on {ds.get('name')}", "",
             f"- dataset: {ds.get('name')}, {ds.get('num_classes')} classes, split "
             f"{ds.get('split')}",
             f"- model: {model.get('name')}, {model.get('params')} params, input "
             f"{model.get('input_shape')}",
             f"- machine: {env.get('cpu')}, {env.get('cores')} cores (threads: per row), "
             f"GPU {env.get('gpu') or 'none'}",
             f"- versions: TensorFlow {env.get('tensorflow')}, ONNX Runtime {env.get('onnxruntime')}, "
             f"LiteRT {env.get('ai_edge_litert')}, Python {env.get('python')}", ""]
    if report.get("command"):
        lines += [f"Command: `{report['command']}`", ""]
    lines += recommendation_lines(report)
    lines += [f"**{w}**" for w in report.get("warnings") or []] + \
        ([""] if report.get("warnings") else [])
    lines += markdown(as_rows(report["results"]))
    said = notes(report["results"])
    lines += ([""] + said) if said else []
    lines += ["", "Latency: ms per batch, one measurement method for every runtime (inputs "
              "prepared before timing, warm-up, then a minimum count and duration of runs), "
              f"with its 95% interval ({METHOD}); two exports are only faster or slower than "
              "each other when their intervals do not overlap. Accuracy on the test split; "
              "Δacc and agreement against the reference model on the same images."]
    lines += _evaluation_markdown(report.get("evaluation"))
    lines += _details_markdown(report)
    lines += _micro_markdown(report["results"])
    return "\n".join(lines) + "\n"


def _micro_markdown(results) -> list[str]:
    """The microcontroller figures of TFLM rows: arena parts, flash, MACs, ops, the peak."""
    rows = [r for r in as_rows(results) if r.micro and r.micro.arena_bytes is not None]
    return ["", "## On a microcontroller (TFLM)", "", *markdown(rows, MICRO)] if rows else []


def _evaluation_markdown(ev: dict | None) -> list[str]:
    """The Keras model's evaluation (``edgeproof run``): per-class scores, plots, worst images."""
    if not ev:
        return []
    names = list(ev["per_class"])
    scores = list(ev["per_class"].items()) + [("macro avg", ev["macro_avg"]),
                                             ("weighted avg", ev["weighted_avg"])]
    lines = ["", f"## Evaluation of the Keras model ({ev['split']} split, {ev['n']} images)", "",
             f"Accuracy {100 * ev['accuracy']:.2f}%, macro F1 {ev['macro_avg']['f1-score']:.4f}, "
             f"weighted F1 {ev['weighted_avg']['f1-score']:.4f}.", "",
             *markdown_lines(["class", "precision", "recall", "F1", "support"],
                             [[name, f"{v['precision']:.4f}", f"{v['recall']:.4f}",
                               f"{v['f1-score']:.4f}", int(v["support"])] for name, v in scores])]
    files = ev.get("files", {})
    lines.append("")
    for key, title in (("confusion_matrix", "confusion matrix"), ("curves", "loss and accuracy"),
                       ("worst_grid", "worst-classified test images")):
        if key in files:
            lines.append(f"![{title}]({files[key]})")
    lines += ["", "Worst-classified test images (lowest probability for the true class):", "",
              *markdown_lines(["index", "predicted", "actual", "probability (true class)"],
                              [[r["index"], names[r["predicted"]], names[r["actual"]],
                                f"{r['probability']:.4f}"] for r in ev.get("worst", [])])]
    if ev.get("gradcam"):
        lines += ["", "Grad-CAM for the true class of the worst images: "
                  + ", ".join(f"[{Path(p).name}]({p})" for p in ev["gradcam"])]
    elif ev.get("gradcam_skipped"):
        lines += ["", f"No Grad-CAM: {ev['gradcam_skipped']}"]
    return lines


def _details_markdown(report: dict) -> list[str]:
    """What ran (per row), the bare-loop ratios and the gate, when present."""
    rows = as_rows(report["results"])
    lines = ["", "## What ran", "", *markdown(rows, WHAT_RAN)]
    bare = [r for r in rows if r.bare_loop]
    if bare:
        lines += ["", "## Bare-loop check (edgeproof p50 / bare-loop p50, same process)", "",
                  *markdown(bare, BARE_LOOP)]
    if report.get("gate"):
        g = report["gate"]
        lines += ["", f"Gate: {'passed' if g.get('passed') else 'FAILED'} "
                      f"({'; '.join(g.get('failures') or []) or 'all rows within limits'})"]
    return lines
