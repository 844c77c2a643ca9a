"""report.html: one self-contained page for a report (run, bench, evaluate, optimize).

The page is rendered by Jinja2 with autoescaping on (class names come from folder names,
and a folder may be called ``<img src=x onerror=alert(1)>``), every image is embedded as
a data URI, and nothing is fetched: it opens offline, on a laptop or a phone. Sections,
top to bottom: the recommendation, the summary, the results table (sortable by any
column with a few lines of plain JavaScript; without scripts it is a plain table), the
plots, the Keras model's evaluation (per-class scores, confusion matrix, curves, worst
images with Grad-CAM), what ran, and the environment.

Example:
    >>> write_report_page(report, "runs/demo")  # doctest: +SKIP
    PosixPath('runs/demo/report.html')
"""

from __future__ import annotations

import base64
from pathlib import Path

from edgeproof.atomic import atomic_write_bytes
from edgeproof.bench.plots import PLOTS, class_changes
from edgeproof.bench.row import as_rows
from edgeproof.bench.table import RESULTS, WHAT_RAN, html_table

EVAL_FIGURES = (("confusion_matrix", "Confusion matrix (rows: true class)"),
                ("curves", "Loss and accuracy per epoch"),
                ("worst_grid", "Worst-classified test images"))


def data_uri(path: Path) -> str | None:
    """``path`` as a ``data:image/png;base64,…`` URI, or None when it does not exist."""
    try:
        return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
    except OSError:
        return None


def _resolve(out: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() or q.exists() else out / q


def page_context(report: dict, out: Path, rows=None, keys=RESULTS) -> dict:
    """Everything the template shows, from a report dict, its result rows and its folder."""
    table = report.get("results") or [] if rows is None else rows
    headers, cells = html_table(table, keys)  # dicts keep columns a BenchRow has not
    results = as_rows(table)
    changed = class_changes(results)
    ev = report.get("evaluation")
    names = (ev or {}).get("per_class", {}) and list(ev["per_class"]) or []
    return {
        "title": report.get("title") or _title(report), "report": report,
        "recommendation": report.get("recommendation"),
        "warnings": report.get("warnings") or [],
        "columns": headers, "rows": cells,
        "class_note": "No class changed: every export's per-class accuracy equals the "
                      "reference's." if changed is False else None,
        "plots": [(t, uri) for f, t in PLOTS if (uri := data_uri(out / f))],
        "evaluation": ev, "class_names": names,
        "eval_figures": [(t, uri) for k, t in EVAL_FIGURES
                         if ev and k in ev.get("files", {})
                         and (uri := data_uri(_resolve(out, ev["files"][k])))],
        "gradcam": [(Path(p).name, uri) for p in (ev or {}).get("gradcam", [])
                    if (uri := data_uri(_resolve(out, p)))],
        # the same columns as report.md's "What ran" (bench.table.WHAT_RAN)
        "what_ran": dict(zip(("columns", "rows"), html_table(table, WHAT_RAN)))
        if table else None,
        "env": report.get("env") or {},
    }


def _title(report: dict) -> str:
    model = (report.get("model") or {}).get("name") or "artifacts"
    data = (report.get("dataset") or {}).get("name")
    return f"edgeproof report — {model}" + (f" on {data}" if data else "")


def render_page(report: dict, out_dir: str | Path, rows=None, keys=RESULTS) -> str:
    """The report page as HTML text (``rows``: the table's rows, default the report's)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    context = page_context(report, Path(out_dir), rows, keys)
    return env.get_template("report.html.j2").render(**context)


def write_report_page(report: dict, out_dir: str | Path, rows=None, keys=RESULTS) -> Path:
    """Write ``out_dir/report.html`` atomically; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(out / "report.html", render_page(report, out, rows, keys).encode())
