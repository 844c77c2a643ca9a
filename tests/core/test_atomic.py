"""The atomic writer: a killed writer never leaves a partial file under the final name,
written files get the user's usual permissions, and leftovers of killed writers are swept
while a live writer's temporary is kept."""

import os
import signal
import subprocess
import sys
import time

from edgeproof.atomic import (STALE_AFTER_S, atomic_copy, atomic_write_bytes,
                              atomic_write_tree)

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
    for delay in (0.05, 0.11, 0.23, 0.37, 0.51, 0.73):  # moments to kill at, not timings
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


def test_atomic_copy_of_a_file_and_a_folder(tmp_path):
    """optimize copies the recommended artifact (a file, or a SavedModel folder) with it:
    the copy is whole, and an older copy is replaced, not merged."""
    src = tmp_path / "m.tflite"
    src.write_bytes(b"model bytes")
    assert atomic_copy(src, tmp_path / "out.tflite").read_bytes() == b"model bytes"
    tree = tmp_path / "sm"
    (tree / "variables").mkdir(parents=True)
    (tree / "saved_model.pb").write_bytes(b"pb")
    (tree / "variables" / "v").write_bytes(b"1")
    dst = tmp_path / "copy"
    (dst / "stale").mkdir(parents=True)  # an older copy's file: must not survive
    atomic_copy(tree, dst)
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == [
        "saved_model.pb", "variables", "variables/v"]
    assert (dst / "variables" / "v").read_bytes() == b"1"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries
