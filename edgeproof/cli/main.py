"""`edgeproof` entry point: subcommand parsing and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import traceback
import weakref

from edgeproof import __version__
from edgeproof.cli import (cmd_bench, cmd_evaluate, cmd_explain, cmd_export, cmd_info,
                           cmd_memory, cmd_optimize, cmd_parity, cmd_predict, cmd_registries,
                           cmd_run, cmd_train, cmd_triage)
from edgeproof.errors import EdgeproofError, first_line

COMMANDS = (cmd_run, cmd_train, cmd_evaluate, cmd_explain, cmd_export, cmd_optimize, cmd_bench,
            cmd_memory, cmd_predict, cmd_parity, cmd_info, cmd_registries, cmd_triage)

EPILOG = """examples:
  edgeproof run                                  # the offline demo on the built-in digits
  edgeproof run --dataset ../photos --model flowers_cnn_dropout --image-size 150 --epochs 20
  edgeproof export model.keras --format tflite-int8,onnx-fp32 --calib ../photos --out exports/
  edgeproof bench exports/*.tflite exports/*.onnx --dataset ../photos --json bench.json
  edgeproof parity model.keras exports/model-tflite-int8.tflite --dataset ../photos
  edgeproof optimize model.keras --dataset ../photos --max-accuracy-drop 0.5 --out opt/
  edgeproof memory exports/model-tflite-int8.tflite   # flash and arena on a microcontroller
  edgeproof info exports/model-tflite-int8.tflite     # what a model file is, without running it
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeproof", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Train image classifiers, export them to TFLite and ONNX, and prove every "
                    "export matches: accuracy, parity and latency on every runtime.")
    parser.add_argument("--version", action="version", version=f"edgeproof {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # what reports record as the command that made them (argv: in-process callers, tests)
    args.command_line = "edgeproof " + shlex.join(
        sys.argv[1:] if argv is None else [str(a) for a in argv])
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="edgeproof: %(levelname)s: %(message)s")
    if args.debug:
        os.environ.setdefault("EDGEPROOF_VERBOSE", "1")
    try:
        return int(args.func(args) or 0)
    except EdgeproofError as e:
        if args.debug:
            traceback.print_exc()
        print(f"edgeproof: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edgeproof: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("edgeproof: error: out of memory; try a smaller --batch-size or --image-size",
              file=sys.stderr)
        return 2
    except Exception as e:  # a bug or a library error we did not anticipate: still one line
        if args.debug:
            traceback.print_exc()
        first = first_line(e)
        print(f"edgeproof: internal error: {type(e).__name__}: {first} (rerun with --debug for the "
              "traceback)", file=sys.stderr)
        return 3


# Native stacks whose C++ teardown at process exit can crash after a run has finished and
# written everything (seen here: PyTorch + JAX (litert-torch) + OpenVINO in one process,
# exit status 139 after optimize's last line, now and then).
_FRAGILE_AT_EXIT = ("torch", "jax", "openvino")


def entry() -> None:
    """The ``edgeproof`` command: ``main()``, then exit with its code. Where a native stack
    that can crash in its own teardown was loaded, the process ends as soon as the run is
    done (``os._exit``) after the two exit duties edgeproof relies on: its worker
    processes joined (multiprocessing) and temporary folders removed (weakref finalizers);
    the libraries' own exit hooks (JAX's backend teardown among them) are skipped: the OS
    frees what they would."""
    code = main()
    if not any(m in sys.modules for m in _FRAGILE_AT_EXIT):
        sys.exit(code)
    weakref.finalize._exitfunc()  # TemporaryDirectory and other finalizers
    if "multiprocessing" in sys.modules:
        import multiprocessing.util

        multiprocessing.util._exit_function()  # join or end worker processes
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
