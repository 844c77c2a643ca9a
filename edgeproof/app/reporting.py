"""The one report-writing step of ``run``, ``bench`` and ``optimize``.

After the rows are measured, every command does the same: judge the rows by the gate,
pick the recommendation (or name the closest candidate), and write the report files:
``report.json`` (or ``optimize.json``), ``report.md`` (or ``optimize.md``), the plots and
``report.html``. ``decide`` is the judging, ``write_outputs`` the writing.

Example:
    >>> report = build_report(..., results=rows, **decide(rows, Gate(), enforced=False))  # doctest: +SKIP
    >>> write_outputs(report, "runs/demo")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

from edgeproof.app.report_page import write_report_page
from edgeproof.atomic import atomic_write_bytes
from edgeproof.bench.gate import Gate, for_choice, gate_section, judge_rows
from edgeproof.bench.plots import write_plots
from edgeproof.bench.recommend import infer_target, recommend, recommendation_note
from edgeproof.bench.report import to_markdown
from edgeproof.bench.row import as_rows
from edgeproof.bench.table import RESULTS


def decide(rows, gate: Gate, enforced: bool, target: str | None = None) -> dict:
    """report.json's ``gate``, ``recommendation`` and ``recommendation_note`` for ``rows``;
    each row gets its ``verdict``. The gate judges a choice among the rows' exports
    (``bench.gate.for_choice``: Bonferroni over them).

    Args:
        rows: the measured rows.
        gate: the one gate of this command (its flags, else the defaults).
        enforced: whether a failed gate fails the command (recorded in ``gate``).
        target: ``host`` or ``mcu`` (``--target``); None: ``mcu`` when every edge export
            ran on TFLM, else ``host`` (``bench.recommend.infer_target``).

    Example:
        >>> decide([], Gate(), False)["recommendation_note"]
        'No export passes the gate (top-1 agreement >= 99%, accuracy drop <= 0.5 pt); no export has parity numbers.'
    """
    target = target or infer_target(rows)
    gate = for_choice(gate, rows)
    judge_rows(gate, rows)
    devices = list(dict.fromkeys(r.device_id for r in as_rows(rows)))
    if len(devices) > 1:  # one table per device: the choice depends on where it runs
        by_device = {d: [r for r in as_rows(rows) if r.device_id == d] for d in devices}
        recs = {d: _as_dict(recommend(got, gate, target)) for d, got in by_device.items()}
        first = devices[0]
        return {"gate": gate_section(gate, rows, enforced), "recommendation": recs[first],
                "recommendations": recs,
                "recommendation_note": None if recs[first]
                else recommendation_note(by_device[first], gate, target)}
    rec = _as_dict(recommend(rows, gate, target))
    return {"gate": gate_section(gate, rows, enforced), "recommendation": rec,
            "recommendation_note": None if rec else recommendation_note(rows, gate, target)}


def _as_dict(rec):
    return None if rec is None else rec.to_dict()  # report.json holds the record's dict


def write_json(path: str | Path, data) -> Path:
    """``data`` as indented JSON at ``path``, atomically (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, json.dumps(data, indent=2, default=str).encode())


def write_outputs(report: dict, out: str | Path, rows=None, *, keys=RESULTS,
                  name: str = "report", markdown: str | None = None) -> list[Path]:
    """Write ``<name>.json``, ``<name>.md``, the plots and ``report.html`` into ``out``.

    Args:
        report: the report dict (written as it is).
        rows: the table's rows (default: the report's ``results``): BenchRows, or dicts
            with more columns (optimize's candidates).
        keys: the table's columns (a view of ``bench.table``).
        name: the stem of the JSON and Markdown files (``optimize`` writes optimize.*).
        markdown: the Markdown text (default: ``bench.report.to_markdown(report)``).

    Returns:
        The paths written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = report.get("results", []) if rows is None else rows
    written = [write_json(out / f"{name}.json", report),
               atomic_write_bytes(out / f"{name}.md",
                                  (markdown or to_markdown(report)).encode())]
    rec = report.get("recommendation")
    names = (report.get("dataset") or {}).get("class_names")
    written += write_plots(as_rows(rows), out, names, rec and rec["artifact"])
    written.append(write_report_page(report, out, rows, keys))
    return written
