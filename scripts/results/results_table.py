"""docs/results.json and the RESULTS.md table, generated from the run records in
docs/results/<row-id>/ (see scripts/results/results_run.py).

Each folder holds one run's evidence: ``row.json`` (the report row it answers: system,
section, dataset, the report's accuracy, a note), ``train.json`` (command, versions,
seed, precision, fit seconds), ``history.csv`` and ``metrics.json`` (``edgeproof
evaluate`` on the test split). Nothing here is typed in: accuracy, epochs, time and
command all come from the records; tests/docs/test_results_doc.py checks them.

Usage:
    python scripts/results/results_table.py        # regenerate docs/results.json and the table
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ROOT / "docs" / "results"
RECIPES = ROOT / "docs" / "training" / "recipes"  # runs tried before a row's own, and why
JSON, MD = ROOT / "docs" / "results.json", ROOT / "docs" / "RESULTS.md"
BEGIN, END = "<!-- results:begin (scripts/results/results_table.py) -->", "<!-- results:end -->"
SECTIONS = ("MNIST", "CIFAR-10", "flowers")
SLACK = 0.5  # points: a row "matches" the report within half a point


def history_epochs(folder: Path) -> int:
    with open(folder / "history.csv", newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def best_validation(folder: Path) -> tuple[float, int]:
    """(best validation accuracy in %, its epoch counted from 1) of a run's history."""
    with open(folder / "history.csv", newline="") as fh:
        accs = [float(r["val_accuracy"]) for r in csv.DictReader(fh)]
    i = max(range(len(accs)), key=accs.__getitem__)
    return round(100 * accs[i], 2), i + 1


_FEATURES = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512_vnni", "VNNI"),
             ("avx_vnni", "AVX-VNNI"))


def machine(train: dict) -> str:
    """The CPU a run trained on and its bf16/int8 units, from train.json; runs recorded
    before train.json named its machine ran on the development VM of 2026-11-21."""
    m = train.get("machine")
    if not m:
        return "Intel Xeon (AMX, AVX512-BF16, VNNI)†"
    units = [label for flag, label in _FEATURES if flag in m.get("isa", [])]
    return f"{m['cpu']} ({', '.join(units) or 'AVX2 only' if 'avx2' in m.get('isa', []) else ''})"


def entry(folder: Path) -> dict:
    """One results.json row from a record folder."""
    row = json.loads((folder / "row.json").read_text())
    train = json.loads((folder / "train.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    out = {"id": folder.name, "system": row["system"], "section": row["section"],
           "dataset": row["dataset"], "seed_accuracy": row["report_accuracy"],
           "accuracy": round(100 * metrics["accuracy"], 2), "epochs": train["epochs_run"],
           "seconds": train["fit_seconds"], "precision": train["precision"]["used"],
           "machine": machine(train), "command": train["command"]}
    if row.get("note"):
        out["note"] = row["note"]
    return out


def load() -> list[dict]:
    return [entry(f) for f in sorted(RECORDS.iterdir()) if (f / "row.json").exists()]


def _order(row: dict) -> tuple:
    """lab_model1..7 and model8..10 by number, then the ports and variants by name."""
    m = re.match(r"(?:lab_)?model(\d+)", row["system"])
    return (0, int(m.group(1)), row["system"]) if m else (1, 0, row["system"])


def render(rows: list[dict]) -> str:
    """Markdown tables, one per section; ours in bold where it matches or beats the report."""
    out = []
    for section in SECTIONS:
        mine = sorted((r for r in rows if r["section"] == section), key=_order)
        if not mine:
            continue
        out += [f"### {section}", "",
                "| system | report | ours | epochs | fit s | precision | machine | note | command |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in mine:
            ours = f"{r['accuracy']:.2f}%"
            if r["accuracy"] >= r["seed_accuracy"] - SLACK:
                ours = f"**{ours}**"
            out.append(f"| {r['system']} | {r['seed_accuracy']:.2f}% | {ours} | {r['epochs']} | "
                       f"{r['seconds']:.0f} | {r['precision']} | {r['machine']} | "
                       f"{r.get('note', '')} | "
                       f"`{r['command']}` |")
        out.append("")
    beat = [r for r in rows if r["accuracy"] >= r["seed_accuracy"] - SLACK]
    short = sorted(r["system"] + f" ({r['section']})" for r in rows if r not in beat)
    out.append(f"{len(beat)} of {len(rows)} rows match or beat the report (within {SLACK} "
               f"point), each with its own run ({len({r['id'] for r in rows})} runs)."
               + (f" Not yet: {', '.join(short)}." if short else ""))
    out += ["", "† recorded before train.json named its machine: the development VM of "
                "2026-11-21 (Intel Xeon with AMX)."]
    out += render_recipes(recipes())
    return "\n".join(out)


def recipes() -> list[dict]:
    """Runs tried before a row's own run (docs/training/recipes/ROW_ID/N-DATE/), each with
    its command, best validation accuracy and why it was set aside."""
    out = []
    for folder in sorted(RECIPES.glob("*/*/train.json")):
        run = folder.parent
        train = json.loads(folder.read_text())
        why = json.loads((run / "archive.json").read_text())["reason"] \
            if (run / "archive.json").exists() else ""
        acc, epoch = best_validation(run)
        out.append({"row": run.parent.name, "run": run.name, "val_accuracy": acc,
                    "best_epoch": epoch, "epochs": history_epochs(run), "why": why,
                    "machine": machine(train), "command": train["command"]})
    return out


def render_recipes(tried: list[dict]) -> list[str]:
    """RESULTS.md's "tried before" table: validation numbers only (test is the row's)."""
    if not tried:
        return []
    lines = ["", "### Recipes tried before a row's own run", "",
             "Chosen on the validation split only; the test split is the row's own run's. "
             "Records in `docs/training/recipes/ROW-ID/`.", "",
             "| row | run | best validation | at epoch | epochs | machine | why set aside | "
             "command |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {t['row']} | {t['run']} | {t['val_accuracy']:.2f}% | {t['best_epoch']} | "
              f"{t['epochs']} | {t['machine']} | {t['why']} | `{t['command']}` |" for t in tried]
    return lines


def write_markdown(rows: list[dict]) -> None:
    text = MD.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{MD} has no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    MD.write_text(f"{head}{BEGIN}\n{render(rows)}\n{END}{tail}")


def main() -> None:
    rows = load()
    JSON.write_text(json.dumps(rows, indent=1) + "\n")
    write_markdown(rows)


if __name__ == "__main__":
    main()
