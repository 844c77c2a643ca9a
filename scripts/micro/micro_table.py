"""The lab models on a microcontroller: docs/micro/lab_models.json and docs/MICRO.md's table.

``run``: for each model of the registry's lab families at its usual dataset and input size,
build it, train it briefly (a few epochs, ``MODELS``, on a seeded ``--train-images`` of the
train split: the point is the int8 file's memory and whether TFLM answers like Keras, not
the accuracy a full training reaches), export ``tflite-int8`` through the library (200 class-balanced
calibration images), and run it on TFLM and on LiteRT over ``--test-images`` test images
(a seeded sample) against the Keras model. Flash and arena come from the ``tflm`` runtime:
the smallest arena that works, measured in a sandbox process. Each model's entry is
written as soon as it is done (``--only`` re-runs some).

``slice``: an ``.npz`` of images a CIFAR-10 model trained on ``cifar10.npz`` never saw, for
``optimize --target mcu`` runs that finish in minutes on TFLM's reference kernels: its
"train" split (calibration and, 10% of it, the gate's validation) is 5,000 images of
CIFAR-10's test split and its "test" split another 1,000, disjoint (a seeded permutation).

``render``: the table between ``<!-- micro:begin -->`` and ``<!-- micro:end -->`` of
docs/MICRO.md, from the JSON (``--check`` verifies only).

Usage (from the checkout's root):
    python scripts/micro/micro_table.py run [--only small_cnn,lenet5]
    python scripts/micro/micro_table.py slice --out /tmp/cifar10-slice.npz
    python scripts/micro/micro_table.py render [--check]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
DATA, DOC = ROOT / "docs" / "micro" / "lab_models.json", ROOT / "docs" / "MICRO.md"
SHARED = ROOT.parent / "shared" / "datasets"
RAM, FLASH = 256 * 1024, 1024 * 1024  # the budget the table checks: 256 KB SRAM, 1 MB flash
# model: (dataset, image size, epochs) — the datasets and sizes the lab reports used; one
# epoch on 10,000 MNIST images, three on CIFAR-10 (one leaves these models near chance, and
# a near-flat softmax makes int8 rounding flip answers that mean nothing), more where the
# train split is small (digits, flowers)
MODELS = {
    "small_cnn": ("digits", 32, 10), "lenet5": ("mnist.npz", 32, 1),
    **{f"lab_model{i}": ("mnist.npz", 28, 1) for i in range(1, 6)},
    "lab_dropout_model3": ("mnist.npz", 28, 1), "lab_dropout_model4": ("mnist.npz", 28, 1),
    "lab_model6": ("cifar10.npz", 32, 3), "lab_model7": ("cifar10.npz", 32, 3),
    "praisynet": ("cifar10.npz", 32, 3), "lab_dropout_model5": ("cifar10.npz", 32, 3),
    "flowers_cnn": ("flowers", 128, 3), "flowers_cnn_dropout": ("flowers", 128, 3),
}


def _dataset(spec: str, size: int, train_images: int, test_images: int):
    """The dataset at ``size``, its train split cut to ``train_images`` and its test split
    to a seeded sample of ``test_images``."""
    import numpy as np

    from edgeproof.datasets import load_dataset

    ds = load_dataset(spec if spec == "digits" else str(SHARED / spec), image_size=size, seed=0)
    rng = np.random.default_rng(0)
    train = np.sort(rng.permutation(len(ds.y_train))[:train_images])
    test = np.sort(rng.permutation(len(ds.y_test))[:test_images])
    return dataclasses.replace(ds, x_train=ds.x_train[train], y_train=ds.y_train[train],
                               x_test=ds.x_test[test], y_test=ds.y_test[test])


def _train(name: str, ds, epochs: int):
    from edgeproof.tfcompat import set_seed
    from edgeproof.toolkit.distribute import float32_copy, precision_policy, resolve_precision
    from edgeproof.toolkit.models import create_model
    from edgeproof.toolkit.train import TrainConfig, train_model

    set_seed(0)
    policy, _ = resolve_precision("auto")
    t0 = time.perf_counter()
    with precision_policy(policy):
        model = create_model(name, ds.num_classes, ds.input_shape)
        train_model(model, ds, TrainConfig(epochs=epochs, batch_size=128, verbose=0))
    return float32_copy(model), round(time.perf_counter() - t0, 1), policy


def measure(name: str, args, out: Path) -> dict:
    """Train, export and measure one model; its JSON entry."""
    from edgeproof.app.reference_answers import reference_probs
    from edgeproof.bench.one_artifact import bench_batches
    from edgeproof.bench.footprint import record_in_manifest
    from edgeproof.bench.settings import BenchSettings, EvalData
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.context import calibration_context, model_fingerprint
    from edgeproof.export.formats import export_model

    spec, size, epochs = MODELS[name]
    epochs = args.epochs or epochs
    ds = _dataset(spec, size, args.train_images, args.test_images)
    given = dict(item.split("=", 1) for item in args.keras)
    if name in given:  # a model trained elsewhere (e.g. with `edgeproof train`): no training
        from edgeproof.keras_loader import load_keras_model

        model, fit_s, policy, epochs = load_keras_model(given[name]), None, None, None
    else:
        model, fit_s, policy = _train(name, ds, epochs)
    ctx = calibration_context(ds, min(200, len(ds.y_train)), 0,
                              {"model_name": name, "sha256": model_fingerprint(model),
                               "dataset": ds.name})
    path = write_artifact(export_model(model, "tflite-int8", ctx), out, f"{name}-tflite-int8",
                          force=True)
    ref = reference_probs(model, ds)
    data = EvalData(ds.x_test, ds.y_test, ref)
    t0 = time.perf_counter()
    (micro_row,), micro_probs = bench_batches(path, BenchSettings(runtime="tflm", latency=False),
                                              data)
    tflm_s = time.perf_counter() - t0
    (lite_row,), lite_probs = bench_batches(path, BenchSettings(runtime="litert", threads="1",
                                                                latency=False), data)
    entry = {"model": name, "dataset": ds.name, "input": list(ds.input_shape),
             "params": int(model.count_params()), "model_file": given.get(name),
             "train_images": None if name in given else len(ds.y_train),
             "epochs": epochs, "precision": policy, "fit_seconds": fit_s,
             "test_images": len(ds.y_test),
             "keras_accuracy": float((ref.argmax(1) == ds.y_test).mean())}
    if not micro_row.ok:
        return {**entry, "error": micro_row.error}
    record_in_manifest(path, micro_row.micro)
    m = micro_row.micro
    return {**entry, "tflm_accuracy": micro_row.accuracy,
            "litert_accuracy": lite_row.accuracy,
            "agreement_tflm_keras": micro_row.top1_agreement,
            "agreement_tflm_litert": float((micro_probs.argmax(1)
                                            == lite_probs.argmax(1)).mean()),
            "max_abs_diff_tflm_litert": float(abs(micro_probs - lite_probs).max()),
            "tflm_ms_per_image_host": round(1e3 * tflm_s / len(ds.y_test), 2),
            **{k: getattr(m, k) for k in ("flash_bytes", "manifest_bytes", "arena_bytes",
                                     "arena_recorded_bytes", "arena_head_bytes",
                                     "arena_tail_bytes", "macs", "peak")},
            "fits_ram": m.arena_bytes <= RAM, "fits_flash": m.flash_bytes <= FLASH}


def run(args) -> int:
    from evidence import provenance

    from edgeproof.atomic import atomic_write_bytes

    names = [n.strip() for n in args.only.split(",")] if args.only else list(MODELS)
    doc = json.loads(DATA.read_text()) if DATA.exists() else {"models": {}}
    out = Path(args.models)
    for name in names:
        print(f"· {name}", flush=True)
        t0 = time.perf_counter()
        entry = measure(name, args, out)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        doc["models"][name] = {**entry, **provenance("scripts/micro/micro_table.py",
                                                     sys.argv[1:])}
        doc["models"] = {n: doc["models"][n] for n in MODELS if n in doc["models"]}
        DATA.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(DATA, (json.dumps(doc, indent=1) + "\n").encode())
        print(f"  {json.dumps({k: entry.get(k) for k in ('arena_bytes', 'flash_bytes', 'agreement_tflm_keras', 'error')})}",
              flush=True)
    return 0


def make_slice(args) -> int:
    import numpy as np

    src = np.load(SHARED / "cifar10.npz")
    x, y = src["x_test"], src["y_test"].reshape(-1)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:args.train], order[args.train:args.train + args.test]
    np.savez_compressed(args.out, x_train=x[train], y_train=y[train], x_test=x[test],
                        y_test=y[test])
    print(f"wrote {args.out}: {len(train)} train (of which 10% validation), {len(test)} test, "
          "all from CIFAR-10's test split")
    return 0


def _kb(n) -> str:
    return f"{n / 1024:,.1f}"


def table() -> list[str]:
    """The rendered table (Markdown lines) from docs/micro/lab_models.json."""
    models = json.loads(DATA.read_text())["models"]
    lines = ["| model | dataset | input | trained | params | flash KB | arena KB | MACs | "
             "Keras acc | TFLM acc | TFLM = Keras (top-1) | TFLM = LiteRT (top-1) | "
             "fits 256 KB / 1 MB |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in models.items():
        size = "x".join(map(str, e["input"])) + " | " + (
            "`edgeproof train` (below)" if e.get("model_file")
            else f"{e['epochs']} ep. on {e['train_images']:,}")
        if "error" in e:
            lines.append(f"| {name} | {e['dataset']} | {size} | {e['params']:,} | - | - | - | "
                         f"{100 * e['keras_accuracy']:.1f}% | failed: {e['error']} | - | - | no |")
            continue
        fits = "**yes**" if e["fits_ram"] and e["fits_flash"] else "no (" + ", ".join(
            w for w, ok in (("RAM", e["fits_ram"]), ("flash", e["fits_flash"])) if not ok) + ")"
        lines.append(
            f"| {name} | {e['dataset']} | {size} | {e['params']:,} | {_kb(e['flash_bytes'])} | "
            f"{_kb(e['arena_bytes'])} | {e['macs'] / 1e6:.2f}M | "
            f"{100 * e['keras_accuracy']:.1f}% | {100 * e['tflm_accuracy']:.1f}% | "
            f"{100 * e['agreement_tflm_keras']:.1f}% | {100 * e['agreement_tflm_litert']:.1f}% | "
            f"{fits} |")
    return lines


def render(args) -> int:
    text = DOC.read_text()
    begin, end = "<!-- micro:begin (scripts/micro/micro_table.py) -->", "<!-- micro:end -->"
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    new = head + begin + "\n" + "\n".join(table()) + "\n" + end + tail
    if args.check:
        if new != text:
            print("docs/MICRO.md is out of date: python scripts/micro/micro_table.py render")
            return 1
        return 0
    DOC.write_text(new)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--only", default=None, help="comma-separated model names")
    r.add_argument("--epochs", type=int, default=None, help="default: the model's in MODELS")
    r.add_argument("--train-images", type=int, default=10000)
    r.add_argument("--test-images", type=int, default=300)
    r.add_argument("--models", default="/tmp/micro-models", help="where the .tflite files go")
    r.add_argument("--keras", action="append", default=[], metavar="NAME=PATH",
                   help="measure this trained model for NAME instead of training one")
    r.set_defaults(func=run)
    c = sub.add_parser("slice")
    c.add_argument("--out", required=True)
    c.add_argument("--train", type=int, default=5000)
    c.add_argument("--test", type=int, default=1000)
    c.set_defaults(func=make_slice)
    d = sub.add_parser("render")
    d.add_argument("--check", action="store_true")
    d.set_defaults(func=render)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
