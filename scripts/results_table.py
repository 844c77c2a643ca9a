"""docs/results.json and the RESULTS.md table, generated from the run records in
docs/results/<row-id>/ (see scripts/results_run.py).

Each folder holds one run's evidence: ``row.json`` (the report row it answers: system,
section, dataset, the report's accuracy, a note), ``train.json`` (command, versions,
seed, precision, fit seconds), ``history.csv`` and ``metrics.json`` (``edgeproof
evaluate`` on the test split). Nothing here is typed in: accuracy, epochs, time and
command all come from the records; tests/test_results_doc.py checks them.

Usage:
    python scripts/results_table.py        # regenerate docs/results.json and the table
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "docs" / "results"
JSON, MD = ROOT / "docs" / "results.json", ROOT / "docs" / "RESULTS.md"
BEGIN, END = "<!-- results:begin (scripts/results_table.py) -->", "<!-- results:end -->"
SECTIONS = ("MNIST", "CIFAR-10", "flowers")
SLACK = 0.5  # points: a row "matches" the report within half a point


def history_epochs(folder: Path) -> int:
    with open(folder / "history.csv", newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def entry(folder: Path) -> dict:
    """One results.json row from a record folder."""
    row = json.loads((folder / "row.json").read_text())
    train = json.loads((folder / "train.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    out = {"id": folder.name, "system": row["system"], "section": row["section"],
           "dataset": row["dataset"], "seed_accuracy": row["report_accuracy"],
           "accuracy": round(100 * metrics["accuracy"], 2), "epochs": train["epochs_run"],
           "seconds": train["fit_seconds"], "precision": train["precision"]["used"],
           "command": train["command"]}
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
                "| system | report | ours | epochs | fit s | precision | note | command |",
                "|---|---|---|---|---|---|---|---|"]
        for r in mine:
            ours = f"{r['accuracy']:.2f}%"
            if r["accuracy"] >= r["seed_accuracy"] - SLACK:
                ours = f"**{ours}**"
            out.append(f"| {r['system']} | {r['seed_accuracy']:.2f}% | {ours} | {r['epochs']} | "
                       f"{r['seconds']:.0f} | {r['precision']} | {r.get('note', '')} | "
                       f"`{r['command']}` |")
        out.append("")
    beat = [r for r in rows if r["accuracy"] >= r["seed_accuracy"] - SLACK]
    short = sorted(r["system"] + f" ({r['section']})" for r in rows if r not in beat)
    out.append(f"{len(beat)} of {len(rows)} rows match or beat the report (within {SLACK} "
               f"point), each with its own run ({len({r['id'] for r in rows})} runs)."
               + (f" Not yet: {', '.join(short)}." if short else ""))
    return "\n".join(out)


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
