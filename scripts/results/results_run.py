"""Train one lab-report row, evaluate it on the test split and file its evidence.

Runs ``edgeproof train ARGS --out runs/results/ROW_ID`` and ``edgeproof evaluate`` on its
model (same dataset and seed, so the same held-out test split), then copies the small
records into docs/results/ROW_ID/ (train.json, history.csv, metrics.json without file
paths, and row.json naming the report row) and regenerates docs/results.json and the
RESULTS.md table (scripts/results/results_table.py). Run one at a time on an idle machine: the
fit seconds go into the table.

A row's records are never overwritten: a row id that has records already is refused,
unless ``--archive REASON`` is given, which moves the old records to
``docs/training/recipes/ROW_ID/<n>-<date>/`` with ``archive.json`` (the reason and the
date), so RESULTS.md can say what was tried before. They move only once the new run is
trained and evaluated: a run that fails leaves the row as it was.

Usage:
    python scripts/results/results_run.py cifar-lab_model7 --system lab_model7 --section CIFAR-10 \\
        --dataset CIFAR-10 --report 68.57 -- --dataset ../shared/datasets/cifar10.npz \\
        --model lab_model7 --epochs 6 --batch-size 128
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

from results_table import RECIPES, RECORDS, ROOT, main as regenerate  # noqa: E402  (same folder)


def _value(args: list[str], flag: str, default: str) -> str:
    return args[args.index(flag) + 1] if flag in args else default


def archive(dest: Path, reason: str, recipes: Path = RECIPES) -> Path:
    """Move a row's records ``dest`` to ``recipes/ROW_ID/<n>-<date>/`` with the reason.

    Example:
        >>> archive(RECORDS / "cifar-lab_model6", "re-run with seed 1")  # doctest: +SKIP
        PosixPath('docs/training/recipes/cifar-lab_model6/1-2026-11-30')
    """
    home = recipes / dest.name
    n = 1 + sum(1 for p in home.iterdir() if p.is_dir()) if home.exists() else 1
    target = home / f"{n}-{_dt.date.today().isoformat()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(dest), str(target))
    (target / "archive.json").write_text(json.dumps(
        {"reason": reason, "archived": _dt.datetime.now().isoformat(timespec="seconds")},
        indent=1) + "\n")
    return target


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("row_id")
    p.add_argument("--system", required=True)
    p.add_argument("--section", required=True, choices=("MNIST", "CIFAR-10", "flowers"))
    p.add_argument("--dataset", required=True, help="the report's dataset name")
    p.add_argument("--report", type=float, required=True, help="the report's test accuracy, %%")
    p.add_argument("--note", default="")
    p.add_argument("--archive", default=None, metavar="REASON",
                   help="the row has records already: move them to docs/training/recipes/ROW_ID/ "
                        "with this reason first (without it, an existing row is refused)")
    p.add_argument("--from-run", type=Path, default=None, metavar="DIR",
                   help="the row's run is this finished `edgeproof train` folder (the recipe "
                        "chosen on validation, trained once): evaluate and file it, no retraining")
    p.add_argument("--records", type=Path, default=RECORDS,
                   help="where the evidence folder goes (default docs/results/; elsewhere for "
                        "runs that are not a table row, e.g. a recipe choice or a comparison)")
    p.epilog = ("-- then the `edgeproof train` arguments (with --from-run: its --dataset and "
                "--seed, for the test split)")
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--" not in argv:
        p.error("give the `edgeproof train` arguments after --")
    cut = argv.index("--")
    # Split by hand: argparse's REMAINDER would also swallow this script's own options.
    a, train = p.parse_args(argv[:cut]), argv[cut + 1:]
    dest = a.records / a.row_id
    taken = (dest / "train.json").exists() or (dest / "row.json").exists()
    if taken and not a.archive:
        p.exit(2, f"results_run.py: error: {a.row_id} has records in {dest} already; pass "
                  "--archive REASON to move them to docs/training/recipes/ first (a run is "
                  "never overwritten)\n")
    run = a.from_run or ROOT / "runs" / "results" / a.row_id
    if a.from_run is not None and not (run / "model.keras").exists():
        p.exit(2, f"results_run.py: error: {run} has no model.keras (not a finished run)\n")
    # From the checkout's root (the commands' relative dataset paths hold), with -P so
    # that the checkout's own edgeproof/ folder does not shadow the installed package.
    edgeproof = [sys.executable, "-P", "-m", "edgeproof"]
    if a.from_run is None:
        subprocess.run([*edgeproof, "train", *train, "--out", f"runs/results/{a.row_id}",
                        "--force", "--quiet"], cwd=ROOT, check=True)
    subprocess.run([*edgeproof, "evaluate", str(run / "model.keras"),
                    "--dataset", _value(train, "--dataset", "digits"),
                    "--seed", _value(train, "--seed", "0"), "--out", str(run / "eval"),
                    "--quiet"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    if taken:  # only now, with the new run trained and evaluated: a failure moves nothing
        print(f"archived the previous run to {archive(dest, a.archive)}")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "train.json", dest / "train.json")
    shutil.copy(run / "history.csv", dest / "history.csv")
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    keep = ("dataset", "split", "n", "accuracy", "per_class", "confusion_matrix", "worst")
    (dest / "metrics.json").write_text(json.dumps({k: metrics[k] for k in keep}, indent=1) + "\n")
    (dest / "row.json").write_text(json.dumps({"system": a.system, "section": a.section,
                                               "dataset": a.dataset, "report_accuracy": a.report,
                                               "note": a.note}, indent=1) + "\n")
    if a.records.resolve() == RECORDS.resolve():
        regenerate()
    print(f"{a.row_id}: {100 * metrics['accuracy']:.2f}% (report {a.report}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
