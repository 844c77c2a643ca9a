"""docs/TRAINING.md's tables from kept data: ``render`` (``--check`` to verify only).

The data, each written by the script or run named in it:

- ``docs/training/throughput.json`` (scripts/training/train_throughput.py): images/s per model,
  batch and precision, and the input pipeline's own rate;
- ``docs/training/precision/<id>/`` and ``docs/results/<id>/`` (scripts/results/results_run.py):
  one training command run in float32 and in mixed_bfloat16 (the results row), each with
  train.json, history.csv and metrics.json;
- ``docs/training/feature_cache.json`` (scripts/training/feature_cache_saving.py): a miss and a hit;
- ``docs/training/image_size/<id>/`` (scripts/results/results_run.py): the flowers runs at 128 and
  150 px, of which the results table keeps the one with the better validation accuracy.

Each table goes between ``<!-- training:NAME:begin -->`` and ``<!-- training:NAME:end -->``;
tests/docs/test_training_doc.py checks that the page is in sync.

Usage:
    python scripts/training/training_docs.py render [--check]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC, DATA, RESULTS = ROOT / "docs" / "TRAINING.md", ROOT / "docs" / "training", ROOT / "docs" / "results"


def _record(folder: Path) -> dict:
    """A run's evidence: train.json, metrics.json and the best validation accuracy."""
    train = json.loads((folder / "train.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    with open(folder / "history.csv", newline="") as fh:
        val = [float(r["val_accuracy"]) for r in csv.DictReader(fh) if r.get("val_accuracy")]
    return {"id": folder.name, "train": train, "accuracy": 100 * metrics["accuracy"],
            "best_val": 100 * max(val) if val else float("nan")}


def throughput() -> list[str]:
    doc = json.loads((DATA / "throughput.json").read_text())
    rows = {}
    for r in doc["rows"]:
        rows.setdefault((r["model"], r["image_size"], r["batch"]), {})[r["precision"]] = r
    out = [f"`{doc['command']}` — {doc['machine']}, {doc['created']}", "",
           "| model | image | batch | timed steps | float32 img/s | mixed_bfloat16 img/s | "
           "speed-up | input pipeline img/s |", "|---|---|---|---|---|---|---|---|"]
    for (model, size, batch), by in rows.items():
        f32, bf16 = by["float32"], by["mixed_bfloat16"]
        out.append(f"| {model} | {size or 'native'} | {batch} | {f32['steps']} | "
                   f"{f32['train_img_s']:.0f} | "
                   f"{bf16['train_img_s']:.0f} | {bf16['train_img_s'] / f32['train_img_s']:.2f}x | "
                   f"{min(f32['pipeline_img_s'], bf16['pipeline_img_s']):.0f} |")
    return out


def precision() -> list[str]:
    out = ["| run | precision | epochs | fit s | img/s | test accuracy | command |",
           "|---|---|---|---|---|---|---|"]
    runs = []
    for folder in sorted((DATA / "precision").iterdir()):
        twin = _record(folder)
        base = _record(RESULTS / folder.name.rsplit("-", 1)[0])
        runs.append((base, twin))
        for r in (base, twin):
            t = r["train"]
            n = t["dataset"]["split"]["train"] * t["epochs_run"]
            out.append(f"| {r['id']} | {t['precision']['used']} | {t['epochs_run']} | "
                       f"{t['fit_seconds']:.0f} | {n / t['fit_seconds']:.0f} | "
                       f"{r['accuracy']:.2f}% | `{t['command']}` |")
    out.append("")
    for base, twin in runs:
        speed = twin["train"]["fit_seconds"] / base["train"]["fit_seconds"]
        out.append(f"{base['id']}: {base['train']['precision']['used']} fits {speed:.2f}x faster "
                   f"than {twin['train']['precision']['used']}; test accuracy "
                   f"{base['accuracy'] - twin['accuracy']:+.2f} points.")
    return out


def feature_cache() -> list[str]:
    doc = json.loads((DATA / "feature_cache.json").read_text())
    return [f"`{doc['command']}` — {doc['machine']}, {doc['created']}; each run: "
            f"`{' '.join(doc['train_args'])}`", "",
            "| run | feature cache | process s | fit s |", "|---|---|---|---|",
            *(f"| {name} | {doc[name]['feature_cache']} | {doc[name]['process_s']:.1f} | "
              f"{doc[name]['fit_s']:.1f} |" for name in ("miss", "hit")),
            "", f"The hit saves {doc['saved_s']:.1f} s ({doc['speedup']:.2f}x faster)."]


def image_size() -> list[str]:
    out = ["| system | image px | epochs | best validation accuracy | kept | command |",
           "|---|---|---|---|---|---|"]
    folder = DATA / "image_size"
    if not folder.is_dir():
        return ["No runs kept yet."]
    records = [_record(f) for f in sorted(folder.iterdir())]
    for system in sorted({r["train"]["model"] for r in records}):
        mine = [r for r in records if r["train"]["model"] == system]
        best = max(mine, key=lambda r: r["best_val"])
        for r in mine:
            t = r["train"]
            out.append(f"| {r['id']} | {t['dataset']['image_shape'][0]} | {t['epochs_run']} | "
                       f"{r['best_val']:.2f}% | {'yes' if r is best else 'no'} | "
                       f"`{t['command']}` |")
    return out


BLOCKS = {"throughput": throughput, "precision": precision, "feature-cache": feature_cache,
          "image-size": image_size}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        begin, end = f"<!-- training:{name}:begin -->", f"<!-- training:{name}:end -->"
        if begin not in text or end not in text:
            raise SystemExit(f"{DOC} has no {begin} ... {end} block")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n" + "\n".join(make()) + f"\n{end}{tail}"
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("render",))
    p.add_argument("--check", action="store_true", help="exit 1 when the page is out of sync")
    a = p.parse_args(argv)
    text = DOC.read_text()
    new = render(text)
    if a.check:
        if new != text:
            print(f"{DOC} is out of sync with docs/training/: run scripts/training/training_docs.py render")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
