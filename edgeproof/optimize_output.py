"""What ``edgeproof optimize`` leaves behind, and the run itself.

``DIR/optimize.json`` (candidates with validation and test numbers, the Pareto front, the
recommendation), ``DIR/optimize.md``, ``DIR/pareto.png`` with the recommendation starred,
``DIR/report.html``, and the recommended artifact with its manifest under ``DIR/models/``.

Example:
    >>> result = optimize(OptimizeConfig("model.keras", "digits", "runs/opt"))  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import time
from pathlib import Path

from edgeproof import __version__
from edgeproof.atomic import atomic_write_bytes, ensure_writable_dir
from edgeproof.bench.env import environment
from edgeproof.errors import GateFailed
from edgeproof.manifest import manifest_path
from edgeproof.optimize import (OptimizeConfig, add_test_numbers, closest_line, load_inputs,
                                search, select)
from edgeproof.plots import pareto_front_3d, write_plots
from edgeproof.report_page import write_report_page


def pareto(candidates: list[dict]) -> list[str]:
    """Artifacts no other candidate beats on test accuracy, p50 and size together."""
    ok = [c for c in candidates if c.get("status") == "ok" and c.get("accuracy") is not None]
    pts = [(c["latency_ms"]["p50"], c["accuracy"], c["size_bytes"] or 0) for c in ok]
    return [ok[i]["artifact"] for i in pareto_front_3d(pts)]


def to_markdown(result: dict) -> str:
    """optimize.md: the recommendation, then every rung tried with its numbers."""
    rec, g = result["recommendation"], result["gate"]
    lines = [f"# edgeproof optimize — {result['model']} on {result['dataset']['name']}", "",
             f"Gate: top-1 agreement >= {100 * g['min_agreement']:g}%, accuracy drop <= "
             f"{100 * g['max_accuracy_drop']:g} pt, checked on the validation split; the "
             "numbers below are on the test split. Command: "
             f"`{result['command']}`", ""]
    if rec:
        lines += [f"**Ship {rec['format']}** (`models/{Path(rec['artifact']).name}`, rung "
                  f"\"{rec['rung']}\"): {rec['why']}. Test: accuracy "
                  f"{100 * rec['accuracy']:.2f}% ({100 * rec['accuracy_delta']:+.2f} pt), top-1 "
                  f"agreement {100 * rec['top1_agreement']:.2f}%.", ""]
    else:
        lines += [f"**No candidate passes.** {result['note']}", ""]
    lines += ["| rung | format | runtime | size KB | test accuracy | Δacc | top-1 agree | "
              "val agree | p50 ms | threads | passed | reason | s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in result["candidates"]:
        v, lat = c.get("validation") or {}, c.get("latency_ms") or {}

        def f(x, spec, scale=1.0):
            return "-" if x is None else format(scale * x, spec)
        lines.append(f"| {c['rung']} | {c['format']} | {c.get('runtime', '-')} | "
                     f"{f(c.get('size_bytes'), '.1f', 1 / 1024)} | {f(c.get('accuracy'), '.2f', 100)}% | "
                     f"{f(c.get('accuracy_delta'), '+.2f', 100)} | {f(c.get('top1_agreement'), '.2f', 100)}% | "
                     f"{f(v.get('top1_agreement'), '.2f', 100)}% | {f(lat.get('p50'), '.3f')} | "
                     f"{c.get('threads', '-')} | {'yes' if c['passed'] else 'no'} | "
                     f"{c.get('reason', '')} | {c['seconds']} |")
    if result["budget_stopped"]:
        lines += ["", "The time budget stopped the search; the rungs above are what was tried."]
    return "\n".join(lines) + "\n"


def _write(result: dict, out: Path) -> None:
    rec = result["recommendation"]
    if rec:  # the recommended artifact and its manifest, under models/
        src = out / rec["artifact"]
        (out / "models").mkdir(exist_ok=True)
        for p in (src, manifest_path(src)):
            shutil.copy2(p, out / "models" / p.name)
    atomic_write_bytes(out / "optimize.json", json.dumps(result, indent=2, default=str).encode())
    atomic_write_bytes(out / "optimize.md", to_markdown(result).encode())
    rows = [c for c in result["candidates"] if c.get("status") == "ok"]
    write_plots(rows, out, result["dataset"].get("class_names"), rec and rec["artifact"])
    write_report_page({**result, "title": f"edgeproof optimize — {result['model']}",
                       "results": rows, "edgeproof_version": __version__,
                       "recommendation_note": result.get("note")}, out)


def optimize(cfg: OptimizeConfig, status=None, progress=None) -> dict:
    """Search, select, report. Raises GateFailed (exit 1) when no candidate passes,
    after writing everything (the note names the closest candidate and its numbers)."""
    say = status or (lambda msg: None)
    t0 = time.perf_counter()
    out = ensure_writable_dir(Path(cfg.out))
    say(f"loading {cfg.model} and {cfg.dataset}")
    model, ds, search_ds, ctx_of = load_inputs(cfg)
    candidates, stopped = search(model, ctx_of, search_ds, cfg, out, progress)
    say("test-split numbers of the candidates (after selection)")
    ref_acc = add_test_numbers(candidates, ds, model, ctx_of(1).preprocessing, out)
    rec = select(candidates, cfg.gate)
    result = {"command": cfg.command, "created": _dt.datetime.now().isoformat(timespec="seconds"),
              "model": Path(cfg.model).name, "dataset": ds.summary(),
              "reference_accuracy": ref_acc, "budget_stopped": stopped,
              "gate": {"min_agreement": cfg.min_agreement,
                       "max_accuracy_drop": cfg.max_accuracy_drop, "split": "validation"},
              "candidates": candidates, "pareto": pareto(candidates), "recommendation": rec,
              "note": None if rec else f"No candidate passes the gate; "
                                       f"{closest_line(candidates, cfg.gate)}.",
              "env": environment(), "seconds": round(time.perf_counter() - t0, 1)}
    _write(result, out)
    if rec is None:
        raise GateFailed(result["note"])
    return result
