"""The results table: one column spec, rendered to the console, Markdown and HTML.

Every table of results (``bench``, ``run``, ``export``'s check, ``optimize``'s candidates,
report.md, report.html) takes its columns from ``COLUMNS``: a key, a label, a unit and a
format. A view is a tuple of keys (``RESULTS``, ``OPTIMIZE``); the console drops the
columns a reader needs least until the table fits the terminal (report.md and
report.html keep them all).

Example:
    >>> row = BenchRow(format="onnx-fp32", runtime="onnxruntime", status="ok",
    ...                size_bytes=2048, latency_ms={"p50": 0.25})
    >>> cell(row, COLUMNS["size"]), cell(row, COLUMNS["p50"])
    ('2.0 KB', '0.25')
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass

from edgeproof.bench.gate import arena_note
from edgeproof.bench.micro_figures import micro_of
from edgeproof.bench.row import BenchRow  # noqa: F401  (the examples)
from edgeproof.bench.verdict import Verdict


def _get(row, key):
    return row.get(key) if isinstance(row, dict) else getattr(row, key, None)


def _latency(key):
    return lambda row: (_get(row, "latency_ms") or {}).get(key)


def fmt_size(n) -> str:
    """Bytes as B / KB / MB / GB (powers of 1024).

    Example:
        >>> fmt_size(1536), fmt_size(3 * 2**20)
        ('1.5 KB', '3.0 MB')
    """
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _status(value, row) -> str:
    if _get(row, "error"):
        return f"failed: {_get(row, 'error')[:80]}"
    if _get(row, "fallback"):
        return f"ok (fell back to {_get(row, 'device')})"
    return str(value)


def _threads(value, row) -> str:
    return f"{value} (default)" if _get(row, "threads_default") else str(value)


def _with_ci(key: str):
    """A latency cell with its 95% interval: ``0.250 [0.247, 0.255]``."""
    def fmt(value, row):
        ci = (_get(row, "latency_ms") or {}).get(key)
        return f"{value:.4g} [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else f"{value:.4g}"
    return fmt


def _providers(value, row) -> str:
    return ",".join(p.replace("ExecutionProvider", "") for p in value) or "-"


def _precision(row):
    # Read from runtime_details, so report.json rows (dicts) show it too.
    return (_get(row, "runtime_details") or {}).get("precision")


def _micro(key):
    return lambda row: getattr(micro_of(row), key, None)


def _verdict(row, split=None):
    """The gate's verdict on a row (``split="validation"``: an optimize candidate's on its
    validation numbers), from a BenchRow or a JSON row alike."""
    where = _get(row, split) if split else row
    v = _get(where, "verdict") if where is not None else None
    return Verdict.from_dict(v) if isinstance(v, dict) else v


def _arena(value, row) -> str:
    return fmt_size(value) + arena_note(micro_of(row))


def _details(row) -> dict:
    return _get(row, "runtime_details") or {}


def _ran_on(value, row) -> str:
    asked = _get(row, "requested_device")
    if _get(row, "fallback") and asked:
        return f"{value} (asked for {asked}: fell back)"
    return str(value)


def _load(row):
    """The load time, or why there is none (a row that failed before its runtime loaded)."""
    ms = _get(row, "load_ms")
    if ms is None and _get(row, "status") not in (None, "ok"):
        return "not loaded: the row failed"
    return ms


def _partitions(row):
    # optimize's candidates carry the count; a bench row's runtime details hold the evidence
    count = _get(row, "partitions")
    return count if count is not None else _details(row).get("delegate_nodes")


def _pairs(sep: str):
    return lambda v, row: ", ".join(f"{k}{sep}{x}" for k, x in v.items()) or "-"


# runtime_details keys other What-ran columns show, or too long for a cell (a device's
# whole description, which ``ran_on`` sums up)
_SHOWN_ELSEWHERE = ("available_providers", "options", "builtin_ops", "delegate_nodes", "device")


def _other_details(row):
    rest = {k: v for k, v in _details(row).items() if k not in _SHOWN_ELSEWHERE}
    return rest or None


def _bare(key):
    return lambda row: (_get(row, "bare_loop") or {}).get(key)


def _num(v, row) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _arena_bytes(v, row) -> str:
    return f"{v} ({micro_of(row).arena_kind})"


def _recorded(row):
    m = micro_of(row)
    if m is None or m.arena_recorded_bytes is None:
        return None
    return f"{m.arena_recorded_bytes} = {m.arena_head_bytes} + {m.arena_tail_bytes}"


def _flash_manifest(row):
    m = micro_of(row)
    return None if m is None or m.flash_bytes is None else f"{m.flash_bytes} ({m.manifest_bytes})"


def _peak(row):
    peak = getattr(micro_of(row), "peak", None)
    return f"{peak.get('op_index')} {peak.get('op')}" if peak else None


def _no_kernel(row):
    m = micro_of(row)
    if m is None or m.ops is None:
        return None
    return ", ".join(op for op, ok in m.ops.items() if not ok) or "none"  # None: not asked


@dataclass(frozen=True)
class Column:
    """One column: where its value comes from, its label and how it is written.

    Args:
        key: the row attribute (or latency key) it shows.
        label: the header.
        fmt: ``fmt(value, row) -> text`` (``None`` values show as ``-``).
        get: ``get(row) -> value`` when the value is not the attribute ``key``.
        unit: what the numbers are in (for readers of the spec; the label says it too).
        priority: the console keeps lower numbers first when the terminal is narrow.
    """

    key: str
    label: str
    fmt: Callable = lambda v, row: str(v)
    get: Callable | None = None
    unit: str = ""
    priority: int = 5

    def value(self, row):
        return self.get(row) if self.get else _get(row, self.key)


_SPEC = (
    Column("rung", "rung", priority=0),
    Column("format", "format", priority=0),
    Column("runtime", "runtime", priority=1),
    Column("device_id", "device", priority=1),
    Column("providers", "providers", _providers, priority=6),
    # A runtime that may compute in reduced precision (OpenVINO's bf16) says what ran.
    Column("precision", "precision", get=_precision, priority=2),
    Column("size", "size", lambda v, r: fmt_size(v), lambda r: _get(r, "size_bytes"), "bytes", 3),
    Column("arena", "arena", _arena, _micro("arena_bytes"), "bytes", 9),
    Column("flash", "flash", lambda v, r: fmt_size(v), _micro("flash_bytes"), "bytes", 9),
    Column("macs", "MACs", lambda v, r: f"{v / 1e6:.3g}M", _micro("macs"), "multiply-accumulates",
           9),
    Column("accuracy", "accuracy", lambda v, r: f"{100 * v:.2f}%", unit="%", priority=2),
    Column("accuracy_delta", "Δacc", lambda v, r: f"{100 * v:+.2f} pt", unit="points", priority=4),
    Column("top1_agreement", "top-1 agree", lambda v, r: f"{100 * v:.2f}%", unit="%", priority=2),
    Column("val_agreement", "val agree", lambda v, r: f"{100 * v:.2f}%",
           lambda r: (_get(r, "validation") or {}).get("top1_agreement"), "%", 4),
    Column("max_abs_diff", "max |Δp|", lambda v, r: f"{v:.1e}", priority=7),
    Column("batch_size", "batch", priority=6),
    Column("threads", "threads", _threads, priority=5),
    Column("p50", "p50 ms [95% CI]", _with_ci("p50_ci"), _latency("p50"), "ms", 1),
    Column("p90", "p90 ms [95% CI]", _with_ci("p90_ci"), _latency("p90"), "ms", 6),
    Column("p99", "p99 ms", lambda v, r: f"{v:.4g}", _latency("p99"), "ms", 8),
    Column("throughput_ips", "img/s", lambda v, r: f"{v:.1f}", unit="images/s", priority=7),
    Column("partitions", "XNNPACK partitions", get=_partitions, priority=7),
    # What ran (report.md and report.html): where, how long loading took, the evidence
    Column("artifact", "artifact", priority=7),
    Column("ran_on", "ran on", _ran_on, lambda r: _get(r, "ran_on") or _get(r, "device"),
           priority=3),
    Column("load_ms", "load ms", _num, _load, "ms", 6),
    Column("first_ms", "first ms", _num, _latency("first_ms"), "ms", 7),
    Column("preprocess_ms", "preprocess ms", _num, unit="ms", priority=7),
    Column("rss_peak", "peak RSS Δ MB", _num, lambda r: (_get(r, "memory_mb") or {}).get(
        "peak_delta"), "MB", 8),
    Column("builtin_ops", "ops on builtin kernels", _pairs(" "),
           lambda r: _details(r).get("builtin_ops") or None, priority=8),
    Column("options", "options", _pairs("="), lambda r: _details(r).get("options") or None,
           priority=8),
    Column("details", "details", _pairs("="), _other_details, priority=9),
    # The bare-loop check (edgeproof p50 / the runtime's own call's p50, same process)
    Column("bare_edgeproof_p50", "edgeproof p50 ms", get=_bare("edgeproof_p50_ms"), unit="ms"),
    Column("bare_p50", "bare p50 ms", get=_bare("bare_p50_ms"), unit="ms"),
    Column("bare_call", "bare loop", get=_bare("bare")),
    Column("bare_ratio", "ratio", get=_bare("ratio")),
    # A microcontroller's figures in bytes, as a firmware author pastes them
    Column("arena_bytes", "arena B (smallest that works)", _arena_bytes, _micro("arena_bytes"),
           "bytes"),
    Column("arena_recorded", "recorded total = head + tail B", get=_recorded, unit="bytes"),
    Column("flash_manifest", "flash B (manifest B)", get=_flash_manifest, unit="bytes"),
    Column("macs_count", "multiply-accumulates", get=_micro("macs"), unit="MACs"),
    Column("peak_op", "peak at op", get=_peak),
    Column("no_kernel", "ops without a TFLM kernel", get=_no_kernel),
    Column("passed", "passed", lambda v, r: "yes" if v else "no", priority=1),
    # The gate's three answers (passes, fails, undecided) and the agreement bound behind them.
    Column("verdict", "gate", lambda v, r: v.cell(), _verdict, priority=1),
    Column("val_verdict", "val gate", lambda v, r: v.cell(),
           lambda r: _verdict(r, "validation"), priority=1),
    Column("reason", "reason", priority=3),
    Column("seconds", "s", priority=8),
    Column("status", "status", _status, priority=1),
)
COLUMNS = {c.key: c for c in _SPEC}
FOLDS, FOLD_WIDTH = ("status", "reason"), 12  # columns that wrap instead of widening the table
RESULTS = ("format", "runtime", "device_id", "providers", "precision", "size", "arena", "flash",
           "macs", "accuracy", "accuracy_delta", "top1_agreement", "max_abs_diff", "batch_size",
           "threads", "p50", "p90", "p99", "throughput_ips", "verdict", "status")
OPTIMIZE = ("rung", "format", "runtime", "precision", "size", "arena", "flash", "macs",
            "accuracy", "accuracy_delta", "top1_agreement", "val_agreement", "p50", "threads",
            "partitions", "val_verdict", "reason", "seconds")
WHAT_RAN = ("format", "artifact", "runtime", "batch_size", "ran_on", "threads", "load_ms",
            "first_ms", "preprocess_ms", "rss_peak", "partitions", "builtin_ops", "options",
            "details")
BARE_LOOP = ("format", "runtime", "batch_size", "bare_edgeproof_p50", "bare_p50", "bare_call",
             "bare_ratio")
MICRO = ("artifact", "arena_bytes", "arena_recorded", "flash_manifest", "macs_count", "peak_op",
         "no_kernel")
# Shown only when some row has a value: a device name, a microcontroller's memory, the
# precision a runtime read back, the gate's verdict (rows with parity numbers).
OPTIONAL = ("device_id", "arena", "flash", "macs", "partitions", "precision", "verdict")


def cell(row, column: Column) -> str:
    """The text of one cell (``-`` for a missing value)."""
    v = column.value(row)
    return "-" if v is None or v == [] else column.fmt(v, row)


def sort_value(row, column: Column):
    """What a cell sorts by on the page: the number itself, else its text."""
    v = column.value(row)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else cell(row, column)


def view(keys=RESULTS, rows=()) -> list[Column]:
    """The columns of ``keys``, without the ``OPTIONAL`` ones no row has a value for (a
    device column only when a row names a device; arena and flash only for TFLM rows)."""
    return [COLUMNS[k] for k in keys if k not in OPTIONAL
            or any(COLUMNS[k].value(r) is not None for r in rows)]


def notes(rows) -> list[str]:
    """What the table's figures mean where that is not plain: TFLM's host latency, and
    measured vs computed arenas.

    Example:
        >>> notes([BenchRow(runtime="tflm", micro={"arena_bytes": 20016, "kernels": "TFLM"})])[0][:40]
        'p50 of tflm rows: the host CPU running T'
    """
    micro = [(_get(r, "runtime"), micro_of(r)) for r in rows]
    out = []
    runtimes = sorted({rt for rt, m in micro if m and m.kernels})
    if runtimes:
        out.append(f"p50 of {', '.join(runtimes)} rows: the host CPU running TFLM's reference "
                   "kernels, not microcontroller time (for a microcontroller, compare MACs).")
    if any(m and m.arena_bytes is not None for _, m in micro):
        out.append("arena: the smallest tensor arena that works, measured on TFLM (one marked "
                   "computed is planned from tensor lifetimes: a lower bound); flash: the "
                   ".tflite file, embedded manifest included.")
    return out


def markdown(rows, keys=RESULTS) -> list[str]:
    """The table as Markdown lines (every column of the view).

    Example:
        >>> markdown([BenchRow(format="keras", status="ok")], ("format", "status"))
        ['| format | status |', '|---|---|', '| keras | ok |']
    """
    cols = view(keys, rows)
    return markdown_lines([c.label for c in cols], [[cell(r, c) for c in cols] for r in rows])


def markdown_lines(headers, rows) -> list[str]:
    """Header and rows of text as a Markdown table (the one Markdown table writer; a ``|``
    in a cell cannot end it).

    Example:
        >>> markdown_lines(["class", "F1"], [["a|b", "0.5"]])
        ['| class | F1 |', '|---|---|', '| a/b | 0.5 |']
    """
    lines = ["| " + " | ".join(str(h).replace("|", "\\|") for h in headers) + " |",
             "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |" for r in rows]
    return lines


def html_table(rows, keys=RESULTS) -> tuple[list[str], list[list[tuple]]]:
    """(headers, rows of ``(sort value, text)`` cells) for the page's sortable table."""
    cols = view(keys, rows)
    return [c.label for c in cols], [[(sort_value(r, c), cell(r, c)) for c in cols] for r in rows]


def fit_columns(rows, keys, width: int) -> list[Column]:
    """The view's columns that fit ``width`` characters, the most needed first (rich
    draws a table with 3 characters of border and padding per column)."""
    cols = view(keys, rows)
    need = {c.key: 3 + max([len(c.label)] + [len(cell(r, c)) for r in rows]) for c in cols}
    keep, used = set(), 1
    for c in sorted(cols, key=lambda c: c.priority):
        if c.key in FOLDS and used + need[c.key] > width:
            # A status may fold onto more lines (print_table lets it): what is left will do.
            need[c.key] = max(3 + FOLD_WIDTH, width - used - 1)
        if used + need[c.key] <= width or not keep:
            keep.add(c.key)
            used += need[c.key]
    return [c for c in cols if c.key in keep]


def print_table(rows, title: str | None = None, keys=RESULTS, console=None,
                warnings=()) -> None:
    """The table on the console (rich), as many columns as the terminal fits, under its
    ``warnings`` (a busy machine); a note says where the other columns are."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 160)
    width = console.width or shutil.get_terminal_size().columns
    cols = fit_columns(rows, keys, width)
    table = Table(title=title, show_lines=False)
    for c in cols:  # names stay whole; a long status may fold
        table.add_column(c.label, no_wrap=c.key not in FOLDS, overflow="fold")
    for r in rows:
        table.add_row(*[cell(r, c) for c in cols])
    for w in warnings:
        console.print(w, style="bold yellow")
    console.print(table)
    for note in notes(rows):
        console.print(note, style="dim")
    left = [c.label for c in view(keys, rows) if c not in cols]
    if left:
        console.print(f"(not shown at this width: {', '.join(left)}; all columns are in "
                      "report.md and report.html)", style="dim")
