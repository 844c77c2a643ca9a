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

PLOTS = (("latency.png", "Latency per format × runtime (p50, whisker p90)"),
         ("pareto.png", "Accuracy × latency × size, Pareto front, recommendation starred"),
         ("threads.png", "Thread sweep"),
         ("throughput.png", "Throughput vs batch size"),
         ("class_delta.png", "Per-class accuracy delta per format"))
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


def _cell(row: dict, key: str):
    """(sort value, display text) of one results-table cell."""
    lat = row.get("latency_ms") or {}
    v = lat.get(key) if key in ("p50", "p90") else row.get(key)
    if key == "providers":
        text = ",".join(p.replace("ExecutionProvider", "") for p in v or []) or "-"
        return text, text
    if v is None:
        return "", "-"
    if key in ("accuracy", "top1_agreement"):
        return v, f"{100 * v:.2f}%"
    if key == "accuracy_delta":
        return v, f"{100 * v:+.2f} pt"
    if key == "size_bytes":
        return v, f"{v / 2**20:.2f} MB" if v >= 2**20 else f"{v / 1024:.1f} KB"
    if key == "max_abs_diff":
        return v, f"{v:.1e}"
    if key in ("p50", "p90"):
        return v, f"{v:.3f}"
    if key == "throughput_ips":
        return v, f"{v:.1f}"
    if key == "status" and row.get("error"):
        return "failed", f"failed: {row['error']}"
    return v, str(v)


COLUMNS = (("format", "format"), ("runtime", "runtime"), ("providers", "ran on"),
           ("threads", "threads"), ("size_bytes", "size"), ("accuracy", "accuracy"),
           ("accuracy_delta", "Δacc"), ("top1_agreement", "top-1 agree"),
           ("max_abs_diff", "max |Δp|"), ("batch_size", "batch"), ("p50", "p50 ms"),
           ("p90", "p90 ms"), ("throughput_ips", "img/s"), ("status", "status"))


def _what_ran(row: dict) -> dict:
    d = row.get("runtime_details") or {}
    ops = d.get("builtin_ops")
    return {"artifact": row.get("artifact"), "runtime": row.get("runtime"),
            "device": f"{row.get('device')} (asked {row.get('requested_device') or row.get('device')})",
            "partitions": d.get("delegate_nodes", "-"),
            "builtin": ", ".join(f"{k} {v}" for k, v in ops.items()) if ops else "-",
            "threads": row.get("threads"), "load_ms": row.get("load_ms"),
            "options": ", ".join(f"{k}={v}" for k, v in (d.get("options") or {}).items())}


def page_context(report: dict, out: Path) -> dict:
    """Everything the template shows, from a report dict and its folder."""
    results = report.get("results") or []
    ev = report.get("evaluation")
    names = (ev or {}).get("per_class", {}) and list(ev["per_class"]) or []
    return {
        "title": report.get("title") or _title(report), "report": report,
        "recommendation": report.get("recommendation"),
        "warnings": report.get("warnings") or [],
        "columns": COLUMNS, "rows": [[_cell(r, k) for k, _ in COLUMNS] for r in results],
        "plots": [(t, uri) for f, t in PLOTS if (uri := data_uri(out / f))],
        "evaluation": ev, "class_names": names,
        "eval_figures": [(t, uri) for k, t in EVAL_FIGURES
                         if ev and k in ev.get("files", {})
                         and (uri := data_uri(_resolve(out, ev["files"][k])))],
        "gradcam": [(Path(p).name, uri) for p in (ev or {}).get("gradcam", [])
                    if (uri := data_uri(_resolve(out, p)))],
        "what_ran": [_what_ran(r) for r in results],
        "env": report.get("env") or {},
    }


def _title(report: dict) -> str:
    model = (report.get("model") or {}).get("name") or "artifacts"
    data = (report.get("dataset") or {}).get("name")
    return f"edgeproof report — {model}" + (f" on {data}" if data else "")


def render_page(report: dict, out_dir: str | Path) -> str:
    """The report page as HTML text."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**page_context(report, Path(out_dir)))


def write_report_page(report: dict, out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` atomically; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(out / "report.html", render_page(report, out).encode())
