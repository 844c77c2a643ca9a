"""docs/results.json -> the table in docs/RESULTS.md (between the results markers).

docs/results.json is the source of truth: one entry per reproduced report row,
``{"system", "dataset", "seed_accuracy", "accuracy", "epochs", "seconds", "command"}`` plus
optional ``"note"`` (how the run differs from the report's) and ``"section"``.

Usage:
    python scripts/results_table.py                  # re-render the table
    python scripts/results_table.py --add RUN_DIR --system S --dataset D --seed-accuracy A \\
        --section S [--note N] [--seconds S]         # record a finished `edgeproof train` run
        # (accuracy from RUN_DIR/eval/metrics.json, epochs and command from RUN_DIR/train.json)
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JSON, MD = ROOT / "docs" / "results.json", ROOT / "docs" / "RESULTS.md"
BEGIN, END = "<!-- results:begin (scripts/results_table.py) -->", "<!-- results:end -->"
SECTIONS = ("MNIST", "CIFAR-10", "flowers")


def _order(row: dict) -> tuple:
    """lab_model1..7 and model8..10 by number, then the ports and variants by name."""
    m = re.match(r"(?:lab_)?model(\d+)", row["system"])
    return (0, int(m.group(1)), "") if m else (1, 0, row["system"])


def render(rows: list[dict]) -> str:
    """Markdown tables, one per section, ours in bold where it matches or beats the report."""
    out = []
    for section in SECTIONS:
        mine = sorted((r for r in rows if r.get("section", r["dataset"]) == section), key=_order)
        if not mine:
            continue
        out += [f"### {section}", "",
                "| system | report | ours | epochs | wall s | note | command |",
                "|---|---|---|---|---|---|---|"]
        for r in mine:
            ours = f"{r['accuracy']:.2f}%"
            if r["accuracy"] >= r["seed_accuracy"]:
                ours = f"**{ours}**"
            out.append(f"| {r['system']} | {r['seed_accuracy']:.2f}% | {ours} | {r['epochs']} | "
                       f"{r['seconds']:.0f} | {r.get('note', '')} | `{r['command']}` |")
        out.append("")
    beat = sum(r["accuracy"] >= r["seed_accuracy"] for r in rows)
    out.append(f"{beat} of {len(rows)} rows match or beat the report.")
    return "\n".join(out)


def write_markdown(rows: list[dict]) -> None:
    text = MD.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{MD} has no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    MD.write_text(f"{head}{BEGIN}\n{render(rows)}\n{END}{tail}")


def record(run_dir: Path, args) -> dict:
    """A results.json entry for a finished `edgeproof train --out RUN_DIR` + evaluate run."""
    train = json.loads((run_dir / "train.json").read_text())
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    if metrics["split"] != "test":
        raise SystemExit(f"{run_dir}/eval/metrics.json is on the {metrics['split']} split, not test")
    entry = {"system": args.system, "dataset": args.dataset,
             "seed_accuracy": args.seed_accuracy,
             "accuracy": round(100 * metrics["accuracy"], 2),
             "epochs": train["epochs_run"],
             "seconds": args.seconds if args.seconds is not None else train["seconds"],
             "command": args.command or train.get("command") or "",
             "section": args.section}
    if args.note:
        entry["note"] = args.note
    return entry


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--add", type=Path, default=None, help="a finished run folder to record")
    p.add_argument("--system")
    p.add_argument("--dataset")
    p.add_argument("--section", choices=SECTIONS)
    p.add_argument("--seed-accuracy", type=float)
    p.add_argument("--seconds", type=float, default=None,
                   help="wall time of the whole train process (default: train.json's seconds)")
    p.add_argument("--command", default=None, help="default: the command in train.json")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    rows = json.loads(JSON.read_text())
    if args.add:
        entry = record(args.add, args)
        rows = [r for r in rows if (r["system"], r["dataset"]) != (entry["system"], entry["dataset"])]
        rows.append(entry)
        JSON.write_text(json.dumps(rows, indent=1) + "\n")
        print(json.dumps(entry))
    write_markdown(rows)


if __name__ == "__main__":
    main()
