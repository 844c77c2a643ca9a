"""Plots of a results table (``edgeproof.figures``: headless, one style, atomic), shared
by the report files of ``bench``, ``run`` and ``optimize`` and by report.html.

- ``latency.png``: p50 bars with the p90 as a whisker, one bar per format × runtime
  (at the smallest batch size measured);
- ``pareto.png``: accuracy vs p50 latency, marker area ∝ artifact size, the Pareto
  front (no other row is both faster and more accurate) joined, the recommendation
  starred, labels moved apart where points cluster;
- ``throughput.png``: images/s vs batch size, one line per format × runtime (only when
  more than one batch size was measured: one point per line says nothing);
- ``threads.png``: the thread sweep of each row (p50 per setting);
- ``class_delta.png``: per-class accuracy delta against the reference, format × class
  (only when some class changed: ``class_changes`` says so otherwise).

Example:
    >>> [p.name for p in write_plots(rows, "runs/bench")]  # doctest: +SKIP
    ['latency.png', 'pareto.png', 'threads.png']
"""

from __future__ import annotations

from pathlib import Path

from edgeproof.bench.row import as_rows
from edgeproof.figures import pyplot, save

PLOTS = (("latency.png", "Latency per format × runtime (p50, whisker p90)"),
         ("pareto.png", "Accuracy × latency × size, Pareto front, recommendation starred"),
         ("threads.png", "Thread sweep"),
         ("throughput.png", "Throughput vs batch size"),
         ("class_delta.png", "Per-class accuracy delta per format"),
         ("devices.png", "Latency per format × device (p50, whisker: 95% interval)"))


def _label(r) -> str:
    prov = ",".join(p.replace("ExecutionProvider", "") for p in r.providers or [])
    return f"{r.format}\n{r.runtime}" + (f" ({prov})" if prov else "") + \
        (f"\n@{r.device_id}" if r.device_id else "")


def _ok(results) -> list:
    return [r for r in as_rows(results) if r.ok and r.latency_ms]


def _smallest_batch(rows) -> list:
    smallest = min((r.batch_size for r in rows), default=1)
    return [r for r in rows if r.batch_size == smallest]


def pareto_front_3d(points: list[tuple[float, float, float]]) -> list[int]:
    """Indices of (latency, accuracy, size) points no other point beats: at most as slow,
    at least as accurate and at most as large, and strictly better in one.

    Example:
        >>> pareto_front_3d([(1.0, 0.8, 5), (2.0, 0.9, 5), (3.0, 0.85, 1), (3.0, 0.8, 6)])
        [0, 1, 2]
    """
    def beats(a, b):
        return (a[0] <= b[0] and a[1] >= b[1] and a[2] <= b[2]) and a != b

    return [i for i, p in enumerate(points) if not any(beats(q, p) for q in points)]


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of (latency, accuracy) points no other point beats on both (lower latency,
    higher accuracy), sorted by latency.

    Example:
        >>> pareto_front([(1.0, 0.8), (2.0, 0.9), (3.0, 0.85)])
        [0, 1]
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot_latency(rows, path) -> Path:
    """p50 bars (whisker: p90), one per row at the smallest batch size."""
    plt = pyplot()
    rows = _smallest_batch(_ok(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows)), 4.5))
    p50 = [r.latency_ms["p50"] for r in rows]
    p90 = [r.latency_ms["p90"] for r in rows]
    ax.bar(range(len(rows)), p50, yerr=[[0] * len(rows), [b - a for a, b in zip(p50, p90)]],
           capsize=4, color="tab:blue", label="p50 (whisker: p90)")
    ax.set_xticks(range(len(rows)), [_label(r) for r in rows], fontsize=7)
    ax.set_ylabel(f"latency, ms per batch of {rows[0].batch_size if rows else 1}")
    ax.set_title("Latency per format × runtime")
    ax.legend()
    return save(fig, path)


def spread_labels(points_px: list[tuple[float, float]], height: float = 14.0,
                  width_px: list[float] | None = None) -> list[float]:
    """Vertical label offsets (pixels) that keep labels of clustered markers apart.

    Labels sit right of their marker; one that would overlap a label already placed is
    pushed down a line at a time until it is free (greedy, in display coordinates).

    Example:
        >>> spread_labels([(10, 10), (11, 10), (300, 10)])
        [0.0, -14.0, 0.0]
    """
    widths = width_px or [120.0] * len(points_px)
    placed, offsets = [], []
    for (x, y), w in zip(points_px, widths):
        dy = 0.0
        while any(abs((y + dy) - py) < height and x < px + pw and px < x + w
                  for px, py, pw in placed):
            dy -= height
        placed.append((x, y + dy, w))
        offsets.append(dy)
    return offsets


def plot_pareto(rows, path, recommended: str | None = None) -> Path:
    """Accuracy vs p50 (area ∝ size), the front joined, ``recommended`` (an artifact
    path) starred; labels spread so that clustered points stay readable."""
    plt = pyplot()
    rows = _smallest_batch([r for r in _ok(rows) if r.accuracy is not None])
    fig, ax = plt.subplots(figsize=(7.5, 5))
    pts = [(r.latency_ms["p50"], r.accuracy) for r in rows]
    sizes = [max((r.size_bytes or 0) / 2**20, 0.05) for r in rows]
    top = max(sizes, default=1.0)
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=[30 + 600 * s / top for s in sizes],
               alpha=0.5, label="artifact (area ∝ size)")
    front = pareto_front(pts)
    if front:
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "r--o", label="Pareto front")
    star = [p for r, p in zip(rows, pts) if recommended and r.artifact == recommended]
    if star:
        ax.plot([star[0][0]], [star[0][1]], "*", color="gold", markersize=22,
                markeredgecolor="black", label="recommended")
    ax.set_xlabel("p50 latency, ms")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs latency vs size" + ("" if rows else " (no accuracy: no --dataset)"))
    if pts:  # axis limits first: label positions are computed in display space
        ax.margins(0.15)
        fig.canvas.draw()
        texts = [f"{r.format}/{r.runtime} {s:.1f} MB" for r, s in zip(rows, sizes)]
        px = [tuple(ax.transData.transform(p)) for p in pts]
        order = sorted(range(len(pts)), key=lambda i: -px[i][1])
        offs = spread_labels([px[i] for i in order], width_px=[5.5 * len(texts[i]) for i in order])
        for i, dy in zip(order, offs):
            ax.annotate(texts[i], pts[i], xytext=(6, dy * 72 / fig.dpi),
                        textcoords="offset points", fontsize=7,
                        arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "grey"}
                        if dy else None)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_throughput(rows, path) -> Path | None:
    """Images/s vs batch size per format × runtime; None with one batch size only."""
    rows = _ok(rows)
    if len({r.batch_size for r in rows}) < 2:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series: dict[str, list] = {}
    for r in rows:
        series.setdefault(_label(r).replace("\n", " / "), []).append(
            (r.batch_size, r.throughput_ips))
    for name, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("throughput, images/s")
    ax.set_title("Throughput vs batch size")
    ax.legend(fontsize=7)
    return save(fig, path)


def plot_threads(rows, path) -> Path | None:
    """p50 per thread setting of every row that ran the sweep."""
    rows = [r for r in _ok(rows) if r.thread_sweep]
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        sweep = r.thread_sweep
        keys = list(sweep["p50_ms"])
        ax.plot(range(len(keys)), [sweep["p50_ms"][k] for k in keys], "-o",
                label=_label(r).replace("\n", " / "))
        ax.set_xticks(range(len(keys)), keys)
    ax.set_xlabel("threads")
    ax.set_ylabel(f"p50 ms at batch {rows[0].thread_sweep['batch_size']}")
    ax.set_yscale("log")
    ax.set_title("Thread sweep (the timed runs use the fastest setting)")
    ax.legend(fontsize=7)
    return save(fig, path)


def _per_artifact(rows) -> list:
    """One row per artifact with per-class deltas (batch sizes repeat the same numbers)."""
    seen, uniq = set(), []
    for r in _ok(rows):
        if r.per_class_accuracy_delta and r.artifact not in seen:
            seen.add(r.artifact)
            uniq.append(r)
    return uniq


def class_changes(rows) -> bool | None:
    """Whether any export's per-class accuracy differs from the reference's (None: no
    per-class numbers to tell)."""
    uniq = _per_artifact(rows)
    if not uniq:
        return None
    return any(d for r in uniq for d in r.per_class_accuracy_delta if d)


def plot_class_delta(rows, class_names, path) -> Path | None:
    """Heatmap of per-class accuracy deltas (points), format × class; None when no class
    changed (a blank square says nothing; the page says "no class changed")."""
    uniq = _per_artifact(rows)
    if not uniq or not class_names or not class_changes(rows):
        return None
    import numpy as np

    plt = pyplot()
    grid = np.array([[np.nan if d is None else 100 * d for d in r.per_class_accuracy_delta]
                     for r in uniq])
    lim = max(1.0, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(class_names) + 3), 0.5 * len(uniq) + 2))
    im = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.grid(False)
    ax.set_xticks(range(len(class_names)), [str(c)[:14] for c in class_names], rotation=45,
                  ha="right", fontsize=8)
    ax.set_yticks(range(len(uniq)), [_label(r).replace("\n", " / ") for r in uniq], fontsize=7)
    fig.colorbar(im, ax=ax, label="accuracy delta, points")
    ax.set_title("Per-class accuracy delta against the reference")
    return save(fig, path)


def plot_devices(rows, path) -> Path | None:
    """p50 per format × runtime, one bar per device (with its 95% interval); None unless
    the rows come from more than one device."""
    import numpy as np

    rows = _smallest_batch(_ok(rows))
    devices = sorted({r.device_id for r in rows if r.device_id})
    if len(devices) < 2:
        return None
    plt = pyplot()
    keys = sorted({(r.format, r.runtime) for r in rows})
    width = 0.8 / len(devices)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(keys)), 4.5))
    for d, dev in enumerate(devices):
        got = {(r.format, r.runtime): r for r in rows if r.device_id == dev}
        xs = [i + d * width for i, k in enumerate(keys) if k in got]
        mid = [got[k].p50 for k in keys if k in got]
        ci = [got[k].latency_ms.get("p50_ci") or [got[k].p50] * 2 for k in keys if k in got]
        err = np.array([[m - c[0] for m, c in zip(mid, ci)], [c[1] - m for m, c in zip(mid, ci)]])
        ax.bar(xs, mid, width, yerr=err, capsize=3, label=dev)
    ax.set_xticks([i + width * (len(devices) - 1) / 2 for i in range(len(keys))],
                  [f"{f}\n{rt}" for f, rt in keys], fontsize=7)
    ax.set_ylabel(f"p50 latency, ms per batch of {rows[0].batch_size}")
    ax.set_title("Latency per format × device")
    ax.legend(fontsize=8)
    return save(fig, path)


def write_plots(rows, out_dir: str | Path, class_names=None,
                recommended: str | None = None) -> list[Path]:
    """Write latency.png and pareto.png, and threads.png, throughput.png and
    class_delta.png when they have something to show, into ``out_dir``.

    Example:
        >>> write_plots(report["results"], "runs/bench")  # doctest: +SKIP
        [PosixPath('runs/bench/latency.png'), ...]
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = as_rows(rows)
    made = [plot_latency(rows, out / "latency.png"),
            plot_pareto(rows, out / "pareto.png", recommended),
            plot_throughput(rows, out / "throughput.png"),
            plot_threads(rows, out / "threads.png"),
            plot_class_delta(rows, class_names, out / "class_delta.png"),
            plot_devices(rows, out / "devices.png")]
    for name, _ in PLOTS:  # a plot with nothing to show this time must not linger
        if (out / name) not in made and (out / name).exists():
            (out / name).unlink()
    return [p for p in made if p is not None]
