"""`edgekit export`: any trained Keras model -> edge formats, each verified against it."""

from __future__ import annotations

from toolkit.cli.common import fraction, out, parse_options, positive_int, status_printer
from toolkit.validation import parse_list


def register(sub) -> None:
    p = sub.add_parser("export", help="convert a Keras model to edge formats",
                       description="Convert MODEL (.keras, .h5 or a SavedModel folder) to each "
                       "--format, writing <out>/<name>-<format><suffix> and its manifest "
                       "<...>.json atomically. With --calib, int8 formats calibrate on images "
                       "from its train split and every export is checked against MODEL on its "
                       "test split.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--format", required=True, help="comma-separated formats (edgekit formats)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--calib", metavar="DATA", default=None,
                   help="calibration/verification dataset (same forms as --dataset)")
    p.add_argument("--calib-size", type=positive_int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="format option, e.g. io_type=uint8 or opset=13 (repeatable)")
    p.add_argument("--class-names", default=None, help="comma-separated class names")
    p.add_argument("--scale", type=float, default=None, help="pixel scale (default 1/255)")
    p.add_argument("--offset", type=float, default=None, help="pixel offset (default 0)")
    p.add_argument("--name", default=None, help="artifact base name (default: MODEL's stem)")
    p.add_argument("--min-agreement", type=fraction, default=None,
                   help="fail (exit 1) when an export's top-1 agreement with MODEL is below this")
    p.add_argument("--debug-quant", action="store_true",
                   help="for int8 formats that support it (tflite-int8), write the per-layer "
                   "quantization error as <artifact>.quant-debug.csv/.png (needs --calib)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the check rows (plus export_seconds per format) as JSON")
    p.add_argument("--force", action="store_true", help="overwrite existing artifacts")
    p.add_argument("--unsafe", action="store_true", help="allow Lambda layers (trusted files only)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def _debug_quant(fmt, model, ctx, out_dir, stem, say) -> None:
    """Write the per-layer quantization error of ``fmt`` when the format has such a report."""
    if fmt.debug_quant is None:
        if fmt.needs_calibration:  # float formats need no report; quantized ones should say
            say(f"--debug-quant: {fmt.name} has no per-layer report (tflite-int8 has)")
        return
    from export.quant_debug import write_debug_report

    say(f"measuring per-layer quantization error of {fmt.name}")
    csv_path, png_path = write_debug_report(fmt.debug_quant(model, ctx), out_dir, stem)
    out(f"wrote {csv_path} and {png_path}")


def _export_each(model, ctx, formats, options, stem, args, say):
    """Export and write each format; returns ([(path, seconds)], [error lines])."""
    import time

    from export.artifact import write_artifact
    from export.formats import export_model, get_format
    from toolkit.errors import EdgekitError

    written, errors = [], []
    for f in formats:
        say(f"exporting {f}")
        fmt = get_format(f)
        try:
            t0 = time.perf_counter()
            art = export_model(model, f, ctx, {k: v for k, v in options.items() if k in fmt.options})
            seconds = time.perf_counter() - t0
            path = write_artifact(art, args.out, f"{stem}-{f}", force=args.force)
            written.append((path, seconds))
            out(f"wrote {path} ({art.manifest.size_bytes:,} bytes, {seconds:.1f} s)")
            if args.debug_quant:
                _debug_quant(fmt, model, ctx, args.out, f"{stem}-{f}", say)
        except EdgekitError as e:
            errors.append(f"{f}: {e}")
            out(f"failed {f}: {e}")
    return written, errors


def _verify(model, ds, written, args, say) -> list[dict]:
    """Each written export against the source model on the test split (printed as a table)."""
    from bench.core import bench_artifact
    from bench.report import print_table
    from toolkit.pipeline import reference_probs

    say("verifying exports against the source model on the test split")
    ref = reference_probs(model, ds)
    rows = [bench_artifact(p, images=ds.x_test, labels=ds.y_test, reference=ref,
                           report_dir=args.out, latency=False)[0] for p, _ in written]
    print_table(rows, title="exports vs source model (test split)")
    return rows


def run(args) -> int:
    from pathlib import Path

    from bench.parity import gate
    from export.formats import get_format
    from export.keras_export import load_keras_model
    from toolkit.errors import EdgekitError, GateFailed, UsageError
    from toolkit.pipeline import context_for_model

    say = status_printer(args.quiet)
    formats = parse_list(args.format)
    options = parse_options(args.option)
    if not formats:
        raise UsageError("--format is empty; see edgekit formats.")
    valid = sorted({k for f in formats for k in get_format(f).options})
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UsageError(f"Option(s) {', '.join(unknown)} not taken by {', '.join(formats)}. "
                         f"Valid options: {', '.join(valid) or 'none'}.")
    from export.artifact import ensure_writable_dir

    ensure_writable_dir(args.out)
    say(f"loading {args.model}")
    model = load_keras_model(args.model, safe_mode=not args.unsafe)
    ctx, ds = context_for_model(model, args.model, args.calib, args.calib_size, args.seed,
                                args.scale, args.offset, parse_list(args.class_names) or None)
    stem = args.name or Path(args.model).stem
    written, errors = _export_each(model, ctx, formats, options, stem, args, say)
    rows = []
    if ds is not None and written:
        rows = _verify(model, ds, written, args, say)
    if args.json:
        import json

        from export.artifact import atomic_write_bytes

        record = [{**r, "export_seconds": round(written[i][1], 2)} for i, r in enumerate(rows)] \
            or [{"artifact": str(p), "export_seconds": round(t, 2)} for p, t in written]
        atomic_write_bytes(args.json, json.dumps(record, indent=2, default=str).encode())
    fails = [f"{r['format']}: {'; '.join(gate(r, args.min_agreement))}" for r in rows
             if r["status"] == "ok" and gate(r, args.min_agreement)]
    fails += [f"{r['format']}: {r['error']}" for r in rows if r["status"] != "ok"]
    if fails:
        raise GateFailed("Export check failed: " + " | ".join(fails))
    if errors:
        raise EdgekitError(f"{len(errors)} of {len(formats)} export(s) failed: " + " | ".join(errors))
    return 0
