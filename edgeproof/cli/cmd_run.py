"""`edgeproof run`: the main job end to end."""

from __future__ import annotations

from edgeproof.app.run import RunConfig, run as run_pipeline
from edgeproof.app.target import MCU_FORMATS
from edgeproof.cli.common import (add_dataset_args, add_gate_args, add_target_args, gate_of,
                                  out, positive_int, print_results, status_printer, threads_arg)
from edgeproof.export.context import DEFAULT_CALIB_SIZE
from edgeproof.export.formats import DEFAULT_FORMATS
from edgeproof.validation import parse_list


def register(sub) -> None:
    p = sub.add_parser("run", help="train, export to every edge format, benchmark and report",
                       description="Train a model, export it (keras, tflite-fp32, tflite-int8, "
                       "onnx-fp32 by default), evaluate every export on its runtime against the "
                       "Keras model, and write OUT/report.json, OUT/report.md and OUT/models/. "
                       "With no arguments: the offline demo on scikit-learn's digits.")
    add_dataset_args(p, default="digits")
    p.add_argument("--model", default="small_cnn", help="registered model (edgeproof models)")
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="square input size (default: the dataset's; digits 32, folders 128)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="training batch size")
    p.add_argument("--formats", default=None,
                   help=f"comma-separated formats (edgeproof formats; default "
                        f"{','.join(DEFAULT_FORMATS)}, with --target mcu {','.join(MCU_FORMATS)})")
    p.add_argument("--calib-size", type=positive_int, default=None,
                   help=f"calibration images for int8, drawn class-balanced from the train "
                        f"split (default {DEFAULT_CALIB_SIZE}, or all of a smaller train split)")
    p.add_argument("--threads", type=threads_arg, default="auto",
                   help="auto (default: a short sweep per artifact picks the fastest count; the row records it), default (each runtime's own) or N")
    p.add_argument("--out", default=None, help="output folder (default runs/<timestamp>)")
    p.add_argument("--precision", default="auto",
                   choices=["auto", "float32", "mixed_bfloat16", "mixed_float16", "mixed"],
                   help="training dtype policy (auto: bf16 on AMX/AVX512-BF16 CPUs, fp16 on "
                        "tensor-core GPUs, else float32; mixed = auto)")
    add_gate_args(p, note=": the recommendation's gate, against the Keras model")
    add_target_args(p, "exports")
    p.add_argument("--force", action="store_true", help="overwrite artifacts already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args) -> int:
    formats = parse_list(args.formats) if args.formats is not None else \
        (MCU_FORMATS if args.target == "mcu" else DEFAULT_FORMATS)
    cfg = RunConfig(dataset=args.dataset, model=args.model, epochs=args.epochs,
                    image_size=args.image_size, batch_size=args.batch_size,
                    formats=tuple(formats), out=args.out, seed=args.seed,
                    calib_size=args.calib_size, threads=args.threads, force=args.force,
                    precision=args.precision, target=args.target,
                    gate=gate_of(args, ram_budget=args.ram_budget,
                                 flash_budget=args.flash_budget),
                    verbose=0 if args.quiet else None,
                    command=args.command_line)
    report = run_pipeline(cfg, status=status_printer(args.quiet))
    m = report["model"]
    print_results(report, f"{m['name']} on {report['dataset']['name']} — Keras test accuracy "
                          f"{100 * m['reference_accuracy']:.2f}%")
    out(f"report: {report['out']}/report.html, report.json, report.md; "
        f"models: {report['out']}/models/")
    failed = [r["format"] for r in report["results"] if r["status"] != "ok"]
    if failed:
        out(f"failed: {', '.join(failed)} (see the error column)")
        return 1
    return 0
