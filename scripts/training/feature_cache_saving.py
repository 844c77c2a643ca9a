"""What the feature cache saves: the same ``*_features`` training twice, a miss then a hit.

Each run is a fresh ``edgeproof train`` process (InceptionV3 feature extraction on the
flowers at 150 px, random base weights: the cost does not depend on them) with
``EDGEPROOF_CACHE`` pointing at an empty folder for the first run, so the first extracts
and stores the base's features and the second reads them. Whole-process seconds are
timed from outside (extraction happens before ``fit``, so train.json's fit seconds do
not show it); train.json's ``feature_cache`` confirms miss and hit. Writes
docs/training/feature_cache.json.

Usage:
    python scripts/training/feature_cache_saving.py --out docs/training/feature_cache.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: evidence.py
from evidence import provenance, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FLOWERS = "../shared/datasets/flowers"  # relative to ROOT, the runs' cwd


def train(args: list[str], out: Path, cache: Path) -> dict:
    """One ``edgeproof train`` process; its wall seconds and train.json's cache state."""
    env = {**os.environ, "EDGEPROOF_CACHE": str(cache)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-P", "-m", "edgeproof", "train", *args, "--out", str(out),
                    "--force", "--quiet"], cwd=ROOT, env=env, check=True)
    seconds = time.perf_counter() - t0
    record = json.loads((out / "train.json").read_text())
    return {"process_s": round(seconds, 1), "fit_s": record["fit_seconds"],
            "feature_cache": record["feature_cache"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=5)
    a = p.parse_args(argv)
    args = ["--dataset", FLOWERS, "--model", "inception_v3_features", "--weights", "none",
            "--image-size", "150", "--epochs", str(a.epochs), "--batch-size", "32"]
    with tempfile.TemporaryDirectory() as d:
        runs = [train(args, Path(d) / f"run{i}", Path(d) / "cache") for i in (1, 2)]
    miss, hit = runs
    doc = {**provenance("scripts/training/feature_cache_saving.py", sys.argv[1:]),
           "train_args": ["edgeproof", "train", *args], "miss": miss, "hit": hit,
           "saved_s": round(miss["process_s"] - hit["process_s"], 1),
           "speedup": round(miss["process_s"] / hit["process_s"], 2)}
    print(json.dumps(doc, indent=1))
    write_json(a.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
