"""Plots of a report's results (matplotlib, Agg: no display needed), shared by the
report files of ``bench``, ``run`` and ``optimize`` and by report.html.

- ``latency.png``: p50 bars with the p90 as a whisker, one bar per format × runtime
  (at the smallest batch size measured);
- ``pareto.png``: accuracy vs p50 latency, marker area ∝ artifact size, the Pareto
  front (no other row is both faster and more accurate) joined, the recommendation
  starred;
- ``throughput.png``: images/s vs batch size, one line per format × runtime;
- ``threads.png``: the thread sweep of each row (p50 per setting);
- ``class_delta.png``: per-class accuracy delta against the reference, format × class.
"""

from __future__ import annotations

from pathlib import Path


def _label(r: dict) -> str:
    prov = ",".join(p.replace("ExecutionProvider", "") for p in r.get("providers") or [])
    return f"{r.get('format')}\n{r.get('runtime')}" + (f" ({prov})" if prov else "")


def _ok(results: list[dict]) -> list[dict]:
    return [r for r in results if r.get("status") == "ok" and r.get("latency_ms")]


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


def plot_latency(results, path, plt) -> Path:
    rows = _ok(results)
    smallest = min((r["batch_size"] for r in rows), default=1)
    rows = [r for r in rows if r["batch_size"] == smallest]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows)), 4.5))
    p50 = [r["latency_ms"]["p50"] for r in rows]
    p90 = [r["latency_ms"]["p90"] for r in rows]
    ax.bar(range(len(rows)), p50, yerr=[[0] * len(rows), [b - a for a, b in zip(p50, p90)]],
           capsize=4, color="tab:blue", label="p50 (whisker: p90)")
    ax.set_xticks(range(len(rows)), [_label(r) for r in rows], fontsize=7)
    ax.set_ylabel(f"latency, ms per batch of {smallest}")
    ax.set_title("Latency per format × runtime")
    ax.legend()
    return _save(fig, path, plt)


def plot_pareto(results, path, plt, recommended: str | None = None) -> Path:
    """Accuracy vs p50 (area ∝ size), the front joined, ``recommended`` (an artifact
    path) starred."""
    rows = [r for r in _ok(results) if r.get("accuracy") is not None]
    if rows:
        smallest = min(r["batch_size"] for r in rows)
        rows = [r for r in rows if r["batch_size"] == smallest]
    fig, ax = plt.subplots(figsize=(7, 5))
    pts = [(r["latency_ms"]["p50"], r["accuracy"]) for r in rows]
    sizes = [max((r.get("size_bytes") or 0) / 2**20, 0.05) for r in rows]
    top = max(sizes, default=1.0)
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=[30 + 600 * s / top for s in sizes],
               alpha=0.5, label="artifact (area ∝ size)")
    for r, (x, y), s in zip(rows, pts, sizes):
        ax.annotate(f"{r['format']}/{r['runtime']} {s:.1f} MB", (x, y), fontsize=7)
    front = pareto_front(pts)
    if front:
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "r--o", label="Pareto front")
    star = [p for r, p in zip(rows, pts) if recommended and r.get("artifact") == recommended]
    if star:
        ax.plot([star[0][0]], [star[0][1]], "*", color="gold", markersize=22,
                markeredgecolor="black", label="recommended")
    ax.set_xlabel("p50 latency, ms")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs latency vs size" + ("" if rows else " (no accuracy: no --dataset)"))
    ax.legend(fontsize=8)
    return _save(fig, path, plt)


def plot_throughput(results, path, plt) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series: dict[str, list] = {}
    for r in _ok(results):
        series.setdefault(_label(r).replace("\n", " / "), []).append(
            (r["batch_size"], r["throughput_ips"]))
    for name, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("throughput, images/s")
    ax.set_title("Throughput vs batch size")
    ax.legend(fontsize=7)
    return _save(fig, path, plt)


def plot_threads(results, path, plt) -> Path | None:
    """p50 per thread setting of every row that ran the sweep (the chosen one filled)."""
    rows = [r for r in _ok(results) if r.get("thread_sweep")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        sweep = r["thread_sweep"]
        keys = list(sweep["p50_ms"])
        ax.plot(range(len(keys)), [sweep["p50_ms"][k] for k in keys], "-o",
                label=_label(r).replace("\n", " / "))
        ax.set_xticks(range(len(keys)), keys)
    ax.set_xlabel("threads")
    ax.set_ylabel(f"p50 ms at batch {rows[0]['thread_sweep']['batch_size']}")
    ax.set_yscale("log")
    ax.set_title("Thread sweep (the timed runs use the fastest setting)")
    ax.legend(fontsize=7)
    return _save(fig, path, plt)


def plot_class_delta(results, class_names, path, plt) -> Path | None:
    """Heatmap of per-class accuracy deltas (points) against the reference, format × class."""
    rows = [r for r in _ok(results) if r.get("per_class_accuracy_delta")]
    seen, uniq = set(), []
    for r in rows:  # one row per artifact (batch sizes repeat the same numbers)
        if r.get("artifact") not in seen:
            seen.add(r.get("artifact"))
            uniq.append(r)
    if not uniq or not class_names:
        return None
    import numpy as np

    grid = np.array([[np.nan if d is None else 100 * d for d in r["per_class_accuracy_delta"]]
                     for r in uniq])
    lim = max(1.0, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(class_names) + 3), 0.5 * len(uniq) + 2))
    im = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(class_names)), [str(c)[:14] for c in class_names], rotation=45,
                  ha="right", fontsize=8)
    ax.set_yticks(range(len(uniq)), [_label(r).replace("\n", " / ") for r in uniq], fontsize=7)
    fig.colorbar(im, ax=ax, label="accuracy delta, points")
    ax.set_title("Per-class accuracy delta against the reference")
    return _save(fig, path, plt)


def _save(fig, path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def write_plots(results: list[dict], out_dir: str | Path, class_names=None,
                recommended: str | None = None) -> list[Path]:
    """Write latency.png, pareto.png, throughput.png, threads.png and class_delta.png
    (the last two when there is something to show) into ``out_dir``.

    Example:
        >>> write_plots(report["results"], "runs/bench")  # doctest: +SKIP
        [PosixPath('runs/bench/latency.png'), ...]
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    made = [plot_latency(results, out / "latency.png", plt),
            plot_pareto(results, out / "pareto.png", plt, recommended),
            plot_throughput(results, out / "throughput.png", plt),
            plot_threads(results, out / "threads.png", plt),
            plot_class_delta(results, class_names, out / "class_delta.png", plt)]
    return [p for p in made if p is not None]
