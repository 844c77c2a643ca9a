"""Per-layer quantization error of a full-integer TFLite conversion (``--debug-quant``).

TFLite's ``QuantizationDebugger`` runs the float and the quantized model side by side
on the calibration images and reports, per quantized tensor, the error the
quantization adds. edgeproof writes it as CSV (with RMSE / scale, the error in units of
one quantization step: values well above ~0.3 flag a layer that loses accuracy) and a
PNG bar plot of that column.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from edgeproof.atomic import atomic_write_bytes
from edgeproof.export.context import ExportContext
from edgeproof.export.tflite import int8_converter
from edgeproof.figures import png_bytes, pyplot
from edgeproof.quiet import quiet_native
from edgeproof.errors import ExportError
from edgeproof.tfcompat import tf

COLUMNS = ("tensor_name", "op_name", "num_elements", "stddev", "mean_error", "max_abs_error",
           "mean_squared_error", "scale", "zero_point", "rmse_over_scale")


def layer_errors(model, ctx: ExportContext, limit: int = 64) -> list[dict]:
    """Per-tensor error of ``model``'s int8 TFLite conversion on the calibration images.

    Args:
        model: the Keras model.
        ctx: the export context with calibration images.
        limit: how many calibration images to run (the debugger is slow).

    Example:
        >>> rows = layer_errors(model, ctx)  # doctest: +SKIP
        >>> max(rows, key=lambda r: r["rmse_over_scale"])["tensor_name"]  # doctest: +SKIP
    """
    t = tf()
    conv, _ = int8_converter(model, ctx, "--debug-quant")
    gen = conv.representative_dataset

    def subset():
        for i, item in enumerate(gen()):
            if i >= limit:
                return
            yield item

    try:
        with quiet_native():
            dbg = t.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=subset)
            dbg.run()
    except Exception as e:
        raise ExportError(f"--debug-quant failed: {str(e).strip()[:200]}. The export itself "
                          "is unaffected; drop --debug-quant.") from None
    buf = io.StringIO()
    dbg.layer_statistics_dump(buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    for r in rows:
        mse, scale = float(r.get("mean_squared_error") or 0), float(r.get("scale") or 0)
        r["rmse_over_scale"] = float(np.sqrt(mse) / scale) if scale else float("nan")
    return rows


def most_sensitive(rows: list[dict]) -> list[str]:
    """Tensor names from ``layer_errors`` rows, the largest RMSE/scale first (the layers
    to keep in float first when int8 loses too much).

    Example:
        >>> most_sensitive([{"tensor_name": "a", "rmse_over_scale": 0.1},
        ...                 {"tensor_name": "b", "rmse_over_scale": 0.9}])
        ['b', 'a']
    """
    ok = [r for r in rows if np.isfinite(r["rmse_over_scale"])]
    return [r["tensor_name"] for r in sorted(ok, key=lambda r: -r["rmse_over_scale"])]


def write_debug_report(rows: list[dict], out_dir: str | Path, stem: str) -> tuple[Path, Path]:
    """Write ``<stem>.quant-debug.csv`` and ``.png`` (RMSE/scale per tensor), atomically.

    Args:
        rows: what ``layer_errors`` returned.
        out_dir: the output folder.
        stem: the artifact's base name.

    Example:
        >>> write_debug_report(layer_errors(model, ctx), "exports", "model-tflite-int8")  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=list(COLUMNS), extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    csv_path = atomic_write_bytes(out_dir / f"{stem}.quant-debug.csv", text.getvalue().encode())
    png_path = atomic_write_bytes(out_dir / f"{stem}.quant-debug.png", _plot(rows, stem))
    return csv_path, png_path


def _plot(rows: list[dict], title: str) -> bytes:
    plt = pyplot()
    names = [r.get("tensor_name", "?").split(";")[0][-40:] for r in rows]
    vals = [r["rmse_over_scale"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.28 * len(rows) + 1)))
    ax.barh(range(len(vals)), vals, color="tab:orange")
    ax.set_yticks(range(len(vals)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("RMSE / scale (quantization error in steps)")
    ax.set_title(f"per-tensor quantization error: {title}", fontsize=9)
    return png_bytes(fig, dpi=100)
