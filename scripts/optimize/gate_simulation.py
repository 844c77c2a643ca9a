"""How often the gate's pick fails on new data: the point gate against the bound gate.

A fixed population of images and a ladder of candidates, fastest first, each agreeing
with the reference on a known share of the images (``LADDER``: the fast ones just under
99%, the slow ones above, as optimize's rungs are). Each simulation draws a random
validation split of ``val_size`` images (seeded); the gate (``edgeproof.bench.gate.Gate``,
the real one, over every candidate: Bonferroni) judges each candidate on its validation
counts; the pick is the fastest that passes (latencies far apart, so no tie); it *fails
on new data* when it agrees on less than the target on the images not drawn (the
held-out part). Nothing passing is not a failure: optimize then says it cannot prove
one. The bound gate promises a failure rate of at most ``1 - confidence``; the point
gate promises nothing.

The population (200,000 images) is far larger than any validation split, as the images a
model meets after shipping are: when the held-out part is not much larger than the
split, the two draw from one finite pool and a lucky validation split leaves an unlucky
held-out part, which no bound on the validation counts alone accounts for (with 5,000
drawn from 20,000, a candidate truly at 99.05% "failed" 6% of the time).

``run`` writes docs/optimize/gate_simulation.json (the figures, with the command, date
and machine) and gate_simulation.png, and renders the table in docs/OPTIMIZE.md between
``<!-- gate-simulation:begin -->`` and ``<!-- gate-simulation:end -->``; ``render
--check`` verifies the page against the kept JSON (tests/docs/test_optimize_gate_doc.py).
tests/bench/test_gate_simulation.py runs ``simulate`` itself.

Usage:
    python scripts/optimize/gate_simulation.py run
    python scripts/optimize/gate_simulation.py render [--check]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

from edgeproof.bench.gate import Gate

ROOT = Path(__file__).resolve().parents[2]
DOC, DATA = ROOT / "docs" / "OPTIMIZE.md", ROOT / "docs" / "optimize"
JSON, PNG = DATA / "gate_simulation.json", DATA / "gate_simulation.png"
COMMAND = "python scripts/optimize/gate_simulation.py run"
BEGIN, END = "<!-- gate-simulation:begin -->", "<!-- gate-simulation:end -->"

TARGET, CONFIDENCE = 0.99, 0.95
LADDER = (0.985, 0.988, 0.9895, 0.991, 0.993, 0.996, 0.999)  # true agreement, fastest first
POPULATION = 200_000
VAL_SIZES = (300, 600, 1000, 2000, 5000)
SIMULATIONS, SEED = 2000, 0
MODES = ("point", "bound")
# The bound's own worst case: one candidate exactly at the target, nothing to correct for
WORST, WORST_SIZE = (TARGET,), 1000


def population(ladder=LADDER, size: int = POPULATION, seed: int = SEED) -> np.ndarray:
    """(candidates, images) booleans: whether each candidate agrees on each image. Each
    disagrees on exactly ``round((1 - p) * size)`` images, the less accurate ones on a
    superset of the more accurate ones' (as a coarser quantization breaks where a finer
    one does), at seeded random positions."""
    order = np.random.default_rng(seed).permutation(size)
    agree = np.ones((len(ladder), size), dtype=bool)
    for k, p in enumerate(ladder):
        agree[k, order[:round((1 - p) * size)]] = False
    return agree


def _answers(gate: Gate, n: int):
    """The gate's answer for ``agree`` of ``n`` images, remembered (counts repeat)."""
    memo: dict[int, str] = {}

    def answer(agree: int) -> str:
        if agree not in memo:
            row = {"top1_agreement": agree / n, "parity_counts": {"n": n, "agree": agree}}
            memo[agree] = gate.verdict(row, budgets=False).answer
        return memo[agree]
    return answer


def simulate(val_size: int, mode: str, simulations: int = SIMULATIONS, seed: int = SEED,
             ladder=LADDER, size: int = POPULATION) -> dict:
    """The pick's failures on new data over ``simulations`` seeded validation splits.

    Example:
        >>> r = simulate(1000, "bound", simulations=50)
        >>> r["failed"] <= r["picked"] <= 50
        True
    """
    agree = population(ladder, size, seed)
    total = agree.sum(axis=1)
    gate = Gate(TARGET, None, confidence=CONFIDENCE, mode=mode).for_candidates(len(ladder))
    answer, rng = _answers(gate, val_size), np.random.default_rng(seed + 1)
    held_n = size - val_size
    picks = np.full(simulations, -1)
    failed = 0
    for s in range(simulations):  # the same seed: both gates see the same splits
        on_val = agree[:, rng.choice(size, val_size, replace=False)].sum(axis=1)
        pick = next((k for k, a in enumerate(on_val) if answer(int(a)) == "passes"), -1)
        picks[s] = pick
        if pick >= 0 and (total[pick] - on_val[pick]) / held_n < TARGET:
            failed += 1
    picked = int((picks >= 0).sum())
    return {"val_size": val_size, "gate": mode, "level": round(gate.level, 6),
            "simulations": simulations, "picked": picked, "failed": failed,
            "failure_rate": failed / simulations,
            "picks": [int((picks == k).sum()) for k in range(len(ladder))]}


def _machine() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def record() -> dict:
    """Every validation size under both gates, with what produced it."""
    rows = [simulate(n, mode) for n in VAL_SIZES for mode in MODES]
    worst = [simulate(WORST_SIZE, mode, ladder=WORST) for mode in MODES]
    return {"command": COMMAND, "created": dt.date.today().isoformat(), "machine": _machine(),
            "target": TARGET, "confidence": CONFIDENCE, "ladder": list(LADDER),
            "population": POPULATION, "simulations": SIMULATIONS, "seed": SEED,
            "correction": "bonferroni", "rows": rows,
            "worst_case": {"ladder": list(WORST), "rows": worst}}


def plot(doc: dict, path: Path = PNG) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, style in (("point", "o-"), ("bound", "s-")):
        rows = [r for r in doc["rows"] if r["gate"] == mode]
        sizes = [r["val_size"] for r in rows]
        ax.plot(sizes, [100 * r["failure_rate"] for r in rows], style, label=f"{mode} gate")
        bx.plot(sizes, [100 * r["picked"] / r["simulations"] for r in rows], style,
                label=f"{mode} gate")
    ax.axhline(100 * (1 - doc["confidence"]), color="grey", ls="--",
               label=f"promised: {100 * (1 - doc['confidence']):g}%")
    ax.set(xscale="log", xlabel="validation images", ylabel="pick fails on new data (%)",
           title="failure rate on held-out images")
    bx.set(xscale="log", xlabel="validation images", ylabel="runs with a pick (%)",
           title="how often a candidate is proven")
    sizes = sorted({r["val_size"] for r in doc["rows"]})
    for a in (ax, bx):
        a.set_xticks(sizes, [f"{n:,}" for n in sizes])
        a.minorticks_off()
        a.legend()
        a.grid(alpha=0.3)
    fig.suptitle(f"{doc['simulations']:,} seeded splits per point; ladder {doc['ladder']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(doc: dict) -> list[str]:
    """The page's block: where the figures come from, then one row per validation size."""
    by = {(r["val_size"], r["gate"]): r for r in doc["rows"]}
    out = [f"`{doc['command']}` — {doc['machine']}, {doc['created']}; "
           f"{doc['simulations']:,} seeded validation splits per size of a "
           f"{doc['population']:,}-image population; ladder (true agreement, fastest first) "
           f"{', '.join(f'{100 * p:g}%' for p in doc['ladder'])}; target "
           f"{100 * doc['target']:g}% at {100 * doc['confidence']:g}% confidence "
           f"({doc['correction']} over {len(doc['ladder'])} candidates).", "",
           "| validation images | point gate: pick fails | bound gate: pick fails | "
           "bound gate: runs with a pick |", "|---|---|---|---|"]
    for n in sorted({r["val_size"] for r in doc["rows"]}):
        p, b = by[(n, "point")], by[(n, "bound")]
        out.append(f"| {n:,} | {100 * p['failure_rate']:.1f}% | {100 * b['failure_rate']:.1f}% | "
                   f"{100 * b['picked'] / b['simulations']:.1f}% |")
    worst = {r["gate"]: r for r in doc["worst_case"]["rows"]}
    out += ["", f"Worst case for the bound, one candidate at exactly "
            f"{100 * doc['worst_case']['ladder'][0]:g}% on {worst['bound']['val_size']:,} "
            f"validation images (nothing to correct for): the point gate's pick fails on new "
            f"data in {100 * worst['point']['failure_rate']:.1f}% of runs, the bound gate's in "
            f"{100 * worst['bound']['failure_rate']:.1f}% (promised: at most "
            f"{100 * (1 - doc['confidence']):g}%)."]
    return out


def render(text: str, doc: dict) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} has no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n" + "\n".join(table(doc)) + f"\n{END}{tail}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("run", "render"))
    p.add_argument("--check", action="store_true", help="render: exit 1 when out of sync")
    a = p.parse_args(argv)
    if a.action == "run":
        doc = record()
        DATA.mkdir(parents=True, exist_ok=True)
        JSON.write_text(json.dumps(doc, indent=2) + "\n")
        plot(doc)
    doc = json.loads(JSON.read_text())
    text = DOC.read_text()
    new = render(text, doc)
    if a.check:
        if new != text:
            print(f"{DOC} is out of sync with {JSON}: run {COMMAND}")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
