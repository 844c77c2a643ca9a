"""No interruption loses work: `edgeproof train` killed with SIGKILL in its second epoch,
then run again with --resume, ends with weights bit-identical to an uninterrupted run.

The kill is placed by an event, not by a clock: the killed run pauses at the end of the
second epoch's third batch (tests/pause_in_training.py, after BackupAndRestore saved epoch
1 and CSVLogger wrote its row) and writes a marker file; the test waits for that file and
sends SIGKILL, so it lands mid-epoch 2 however loaded the machine is."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import ROOT, run_cli

pytestmark = pytest.mark.slow

TRAIN = ("train", "--dataset", "digits", "--image-size", "16", "--epochs", "4",
         "--batch-size", "8", "--seed", "0", "--quiet")


def _weights(path):
    from edgeproof.keras_loader import load_keras_model

    return load_keras_model(path).get_weights()


def wait_for_file(marker, proc, timeout: float = 300.0) -> bool:
    """Poll until ``marker`` exists; False when ``proc`` ended or ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if marker.exists():
            return True
        time.sleep(0.02)
    return marker.exists()


@pytest.mark.timeout(900)
def test_sigkill_then_resume_ends_identical_to_uninterrupted(tmp_path):
    straight = tmp_path / "straight"
    assert run_cli(*TRAIN, "--out", straight).returncode == 0
    killed = tmp_path / "killed"
    marker = tmp_path / "paused"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "pause_in_training.py"),
                             "1", "2", str(marker), *TRAIN, "--out", str(killed)],
                            cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    reached = wait_for_file(marker, proc)  # paused in epoch 2 (0-based epoch 1, batch 2)
    proc.send_signal(signal.SIGKILL)
    assert reached and proc.wait() == -signal.SIGKILL, "training never reached the pause"
    history = killed / "history.csv"
    assert len(history.read_text().splitlines()) == 2  # header + epoch 1: killed in epoch 2
    assert not (killed / "model.keras").exists() and (killed / "backup").is_dir()
    resumed = run_cli(*TRAIN, "--out", killed, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at epoch 2" in resumed.stdout, resumed.stdout
    assert len(history.read_text().splitlines()) == 5  # header + 4 epochs
    for a, b in zip(_weights(straight / "model.keras"), _weights(killed / "model.keras")):
        np.testing.assert_array_equal(a, b)
