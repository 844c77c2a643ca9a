"""Issue 6: bad model files, parameters and outputs get one-line errors; no interruption
loses work (SIGKILL + --resume ends bit-identical; a killed write never leaves a partial
file under the final name)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import ROOT, run_cli

FUZZ_CASES = 200


def _one_line_error(proc, *needles):
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgeproof: error:")]
    assert len(errors) == 1, proc.stderr
    for n in needles:
        assert n.lower() in errors[0].lower(), errors[0]


# -- model files --------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["tflite-int8", "tflite-fp32", "onnx-fp32", "keras"])
@pytest.mark.parametrize("verify", [True, False], ids=["verified", "raw-loader"])
def test_fuzzed_artifacts_never_crash(tiny_exports, fmt, verify):
    """200 mutants per format (bit flips, truncation, random bytes), loaded and run in a
    child process: no crash (the child would die), no unclean exception. With the
    manifest check every mutant is refused before a native loader sees it."""
    cmd = [sys.executable, str(ROOT / "scripts" / "fuzz_artifacts.py"), str(tiny_exports[fmt]),
           "--cases", str(FUZZ_CASES), "--json"] + ([] if verify else ["--no-verify"])
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"loader crashed (rc {proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sum(result["outcomes"].values()) == FUZZ_CASES
    assert result["unclean"] == [] and "unclean" not in result["outcomes"]
    if verify:
        assert result["outcomes"].get("refused", 0) >= FUZZ_CASES - 1


@pytest.mark.parametrize("fmt", ["tflite-fp32", "onnx-fp32"])
@pytest.mark.parametrize("through", ["predict", "bench"])
def test_structured_mutants_without_manifest_never_crash_the_cli(tiny_exports, fmt, through):
    """Valid flatbuffers / protobufs with one hostile value each (huge or negative dims,
    out-of-range indices, mismatched buffers), handed over without a manifest: every case a
    one-line error, a failed row or a result; none kills or tracebacks the CLI process.
    CI runs a few per cell; docs/RELIABILITY.md gives the long run."""
    cases = 8
    cmd = [sys.executable, str(ROOT / "scripts" / "fuzz_structured.py"), str(tiny_exports[fmt]),
           "--cases", str(cases), "--seed", "3", "--through", through, "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"CLI process died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sum(result["outcomes"].values()) == cases and len(result["mutations"]) >= 3
    assert result["unclean"] == [] and "unclean" not in result["outcomes"]


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".tflite", ".onnx"])
@pytest.mark.parametrize("content", [b"", b"garbage" * 100], ids=["empty", "garbage"])
def test_garbage_model_files_are_refused(tmp_path, suffix, content):
    bad = tmp_path / f"model{suffix}"
    bad.write_bytes(content)
    if suffix in (".keras", ".h5"):
        proc = run_cli("export", bad, "--format", "tflite-fp32", "--out", tmp_path / "o")
        _one_line_error(proc, "model")
    else:
        proc = run_cli("predict", bad, tmp_path)
        _one_line_error(proc, "manifest")


def test_altered_artifact_is_refused_with_its_manifest(tiny_exports, tmp_path):
    src = tiny_exports["tflite-int8"]
    bad = tmp_path / src.name
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    (tmp_path / (src.name + ".json")).write_bytes(src.with_name(src.name + ".json").read_bytes())
    img = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (16, 16), 0).save(img)
    _one_line_error(run_cli("predict", bad, img), "sha256")


def test_wrong_runtime_for_the_file(tiny_exports):
    from edgeproof.bench.runtimes import open_runtime
    from edgeproof.errors import RuntimeFailure

    with pytest.raises(RuntimeFailure, match="not a litert artifact"):
        open_runtime(tiny_exports["onnx-fp32"], "litert").load()


def test_lambda_layer_is_refused_unless_unsafe(tmp_path):
    from edgeproof.tfcompat import keras

    k = keras()
    inp = k.Input((8, 8, 1))
    out = k.layers.Dense(2, activation="softmax")(k.layers.Flatten()(k.layers.Lambda(lambda x: x * 2.0)(inp)))
    path = tmp_path / "lambda.keras"
    k.Model(inp, out).save(path)
    _one_line_error(run_cli("export", path, "--format", "onnx-fp32", "--out", tmp_path / "a"),
                    "lambda", "--unsafe")
    proc = run_cli("export", path, "--format", "onnx-fp32", "--out", tmp_path / "b", "--unsafe")
    assert proc.returncode == 0, proc.stderr


# -- shapes, types and parameters ---------------------------------------------------------
@pytest.mark.parametrize("fmt", ["tflite-int8", "onnx-fp32", "keras"])
def test_wrong_input_names_expected_and_got(tiny_exports, fmt):
    from edgeproof.bench.runtimes import open_runtime
    from edgeproof.errors import RuntimeFailure

    with open_runtime(tiny_exports[fmt]) as rt:
        dtype = np.dtype(rt.manifest.input.dtype)
        with pytest.raises(RuntimeFailure, match=r"\[1, 20, 20, 1\].*\[-1, 16, 16, 1\]"):
            rt.predict(np.zeros((1, 20, 20, 1), dtype))
        with pytest.raises(RuntimeFailure, match=r"\[1, 16, 16, 3\]"):
            rt.predict(np.zeros((1, 16, 16, 3), dtype))
        with pytest.raises(RuntimeFailure, match="dtype float64"):
            rt.predict(np.zeros((1, 16, 16, 1), np.float64))


@pytest.mark.parametrize("args,needles", [
    (("train", "--model", "inception_v3_frozen", "--weights", "none", "--image-size", "32",
      "--epochs", "1"), ("at least 75",)),
    (("run", "--calib-size", "5000", "--epochs", "1", "--image-size", "16"), ("calib-size",)),
    (("train", "--lr", "-1", "--epochs", "1"), ("learning_rate",)),
])
def test_bad_parameters(tmp_path, args, needles):
    _one_line_error(run_cli(*args, "--out", tmp_path / "o"), *needles)


# -- outputs ------------------------------------------------------------------------------
def test_unwritable_output_folder_fails_before_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _one_line_error(run_cli("run", "--out", blocker / "sub"), "cannot write", "--out")
    _one_line_error(run_cli("train", "--out", blocker / "sub"), "cannot write")


def test_disk_full_leaves_previous_artifact_intact(tmp_path, monkeypatch, tiny_exports):
    from edgeproof import atomic as art_mod
    from edgeproof.export.artifact import Artifact, write_artifact
    from edgeproof.manifest import find_manifest
    from edgeproof.errors import ExportError

    m = find_manifest(tiny_exports["onnx-fp32"])
    write_artifact(Artifact(b"old" * 100, ".onnx", m), tmp_path, "model")

    def full(fd, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(art_mod.os, "fsync", full)
    with pytest.raises(ExportError, match="No space left"):
        write_artifact(Artifact(b"new" * 100, ".onnx", m), tmp_path, "model", force=True)
    assert (tmp_path / "model.onnx").read_bytes() == b"old" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.json"]


_WRITER = """
import sys
from edgeproof.atomic import atomic_write_bytes
path, i = sys.argv[1], 0
print("ready", flush=True)
while True:
    atomic_write_bytes(path, bytes([i % 2]) * (32 << 20))
    i += 1
"""


def test_killed_writer_never_leaves_a_partial_file(tmp_path):
    """SIGKILL an atomic writer of 32 MB files at 6 moments: the final name always
    holds a complete file (all 0s or all 1s), never a prefix."""
    target = tmp_path / "model.tflite"
    target.write_bytes(bytes([1]) * (32 << 20))
    env = dict(os.environ)
    for delay in (0.05, 0.11, 0.23, 0.37, 0.51, 0.73):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], env=env,
                                stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = target.read_bytes()
        assert len(data) == 32 << 20 and data.count(data[:1]) == len(data)
    for stale in tmp_path.glob(".model.tflite.*"):
        stale.unlink()  # temp files of killed writers; never under the final name


def test_written_artifacts_have_the_users_usual_permissions(tmp_path):
    """mkstemp makes 0600 files: an artifact must not stay unreadable to the group/others
    (a model server running as another user) when the umask allows it."""
    import stat

    from edgeproof.atomic import atomic_write_bytes, atomic_write_tree

    old = os.umask(0o022)
    try:
        f = atomic_write_bytes(tmp_path / "m.tflite", b"x")
        d = atomic_write_tree(tmp_path / "m-saved_model", {"saved_model.pb": b"pb"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    assert stat.S_IMODE(d.stat().st_mode) == 0o755
    assert stat.S_IMODE((d / "saved_model.pb").stat().st_mode) == 0o644


def test_leftovers_of_killed_writers_are_swept_but_live_ones_kept(tmp_path):
    from edgeproof.atomic import STALE_AFTER_S, atomic_write_bytes, atomic_write_tree

    old = time.time() - STALE_AFTER_S - 60
    stale_file = tmp_path / ".model.tflite.abc123.tmp"
    stale_file.write_bytes(b"half a model")
    stale_dir = tmp_path / ".model-saved_model.x1.tmp"
    (stale_dir / "variables").mkdir(parents=True)
    (stale_dir / "variables" / "v.data").write_bytes(b"x")
    for p in (stale_dir / "variables" / "v.data", stale_dir / "variables", stale_dir, stale_file):
        os.utime(p, (old, old))
    live = tmp_path / ".model.tflite.live99.tmp"  # a writer busy right now: recent mtime
    live.write_bytes(b"in progress")
    other = tmp_path / ".other.onnx.zz.tmp"  # another artifact's leftover: not ours
    other.write_bytes(b"x")
    os.utime(other, (old, old))
    atomic_write_bytes(tmp_path / "model.tflite", b"new")
    atomic_write_tree(tmp_path / "model-saved_model", {"saved_model.pb": b"pb"})
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and other.exists()
    assert (tmp_path / "model.tflite").read_bytes() == b"new"


# -- no lost work --------------------------------------------------------------------------
TRAIN = ("train", "--dataset", "digits", "--image-size", "16", "--epochs", "4",
         "--batch-size", "8", "--seed", "0", "--quiet")


def _weights(path):
    from edgeproof.keras_loader import load_keras_model

    return load_keras_model(path).get_weights()


@pytest.mark.timeout(900)
def test_sigkill_then_resume_ends_identical_to_uninterrupted(tmp_path):
    straight = tmp_path / "straight"
    assert run_cli(*TRAIN, "--out", straight).returncode == 0
    killed = tmp_path / "killed"
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "edgeproof", *TRAIN, "--out", str(killed)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = killed / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:  # epoch 1 done
            time.sleep(0.3)  # into epoch 2
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "training finished before it could be killed"
    assert not (killed / "model.keras").exists()
    resumed = run_cli(*TRAIN, "--out", killed, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at epoch" in resumed.stdout
    assert len(history.read_text().splitlines()) == 5  # header + 4 epochs
    for a, b in zip(_weights(straight / "model.keras"), _weights(killed / "model.keras")):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_split_other_seed_other_split():
    from edgeproof.datasets import load_dataset

    a, b, c = (load_dataset("digits", 16, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_test, c.y_test)


def test_library_errors_without_a_message_still_give_one_line(tiny_exports, monkeypatch):
    """A native library raising with an empty message (``ValueError()``) used to turn
    ``str(e).splitlines()[0]`` into an IndexError; every site now quotes ``first_line``."""
    from ai_edge_litert import interpreter as litert_interp

    from edgeproof.bench.runtimes import open_runtime
    from edgeproof.errors import RuntimeFailure

    def boom(*a, **k):
        raise ValueError()

    monkeypatch.setattr(litert_interp, "Interpreter", boom)
    with pytest.raises(RuntimeFailure, match="ValueError"):
        open_runtime(tiny_exports["tflite-fp32"]).load()
