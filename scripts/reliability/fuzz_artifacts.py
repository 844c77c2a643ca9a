"""Fuzz edgeproof's artifact loading: mutate a valid artifact and load + run each mutant.

Each case is one mutation of the original bytes (bit flips, truncation, or a span of
random bytes), written beside a copy of the original manifest and loaded through the
product path (``open_runtime(...).load()`` then one ``predict``). Outcomes:

- ``refused``: an edgeproof error (clean, one line) — what a user sees as ``edgeproof: error``;
- ``ran``: the mutant loaded and produced an output (only possible with --no-verify);
- ``unclean``: any other Python exception (a bug: it would reach the user as a traceback).

A native crash kills this process: the caller sees a non-zero exit (e.g. -11), which is
why the test suite runs this script in a subprocess.

Usage:
    python scripts/reliability/fuzz_artifacts.py ARTIFACT [--cases 200] [--seed 0] [--no-verify] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path



def mutate(data: bytes, rng: random.Random, case: int) -> bytes:
    """Case ``i`` uses mutation ``i % 3``: bit flips, truncation, random-byte span."""
    b = bytearray(data)
    kind = case % 3
    if kind == 0:
        for _ in range(rng.randint(1, 20)):
            p = rng.randrange(len(b))
            b[p] ^= 1 << rng.randrange(8)
    elif kind == 1:
        b = b[:rng.randrange(len(b))]
    else:
        p, n = rng.randrange(len(b)), rng.randint(1, 64)
        b[p:p + n] = bytes(rng.randrange(256) for _ in range(n))
    return bytes(b)


def run_case(path: Path, manifest, verify: bool) -> tuple[str, str]:
    import numpy as np

    from edgeproof.preprocess import prepare
    from edgeproof.bench.runtimes import open_runtime
    from edgeproof.errors import EdgeproofError

    try:
        rt = open_runtime(path, manifest=manifest, verify=verify)
        with rt:
            h, w = manifest.preprocessing.size
            x = prepare(np.zeros((1, h, w, manifest.preprocessing.channels), np.uint8), manifest)
            rt.predict(x)
        return "ran", ""
    except EdgeproofError as e:
        msg = str(e)
        return ("refused", msg) if "\n" not in msg else ("unclean", "multi-line: " + msg[:200])
    except Exception as e:  # noqa: BLE001 - counting exactly these is the point
        return "unclean", f"{type(e).__name__}: {str(e)[:200]}"


def fuzz(artifact: Path, cases: int, seed: int, verify: bool) -> dict:
    from edgeproof.manifest import find_manifest

    manifest = find_manifest(artifact)
    data = artifact.read_bytes()
    rng = random.Random(seed)
    outcomes, unclean = Counter(), []
    with tempfile.TemporaryDirectory() as d:
        target = Path(d) / artifact.name
        shutil.copy(artifact.with_name(artifact.name + ".json"), target.with_name(target.name + ".json"))
        for i in range(cases):
            target.write_bytes(mutate(data, rng, i))
            outcome, msg = run_case(target, manifest, verify)
            outcomes[outcome] += 1
            if outcome == "unclean":
                unclean.append({"case": i, "error": msg})
    return {"artifact": artifact.name, "format": manifest.format, "cases": cases, "seed": seed,
            "verify": verify, "outcomes": dict(outcomes), "unclean": unclean[:20]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("artifact", type=Path)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-verify", action="store_true", help="skip the sha256/header check")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = fuzz(args.artifact, args.cases, args.seed, not args.no_verify)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
