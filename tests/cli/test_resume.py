"""No interruption loses work: `edgeproof train` killed with SIGKILL in its second epoch,
then run again with --resume, ends with weights bit-identical to an uninterrupted run.

The kill is timed by what training writes, not by a clock: BackupAndRestore saves epoch
1 before CSVLogger adds its row to history.csv, so the moment that row appears the backup
exists and the process is in epoch 2 (a third row would mean epoch 2 had ended)."""

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


def wait_for_rows(history, rows: int, proc, timeout: float = 300.0) -> bool:
    """Poll ``history`` (a CSV with a header) until it has ``rows`` data rows; False when
    ``proc`` ended or ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 1 + rows:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.timeout(900)
def test_sigkill_then_resume_ends_identical_to_uninterrupted(tmp_path):
    straight = tmp_path / "straight"
    assert run_cli(*TRAIN, "--out", straight).returncode == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "edgeproof", *TRAIN, "--out", str(killed)],
                            cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    history = killed / "history.csv"
    reached = wait_for_rows(history, 1, proc)  # epoch 1 done: now in epoch 2
    proc.send_signal(signal.SIGKILL)
    assert reached and proc.wait() == -signal.SIGKILL, "training ended before the kill"
    assert len(history.read_text().splitlines()) == 2, "the kill did not land in epoch 2"
    assert not (killed / "model.keras").exists() and (killed / "backup").is_dir()
    resumed = run_cli(*TRAIN, "--out", killed, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at epoch 2" in resumed.stdout, resumed.stdout
    assert len(history.read_text().splitlines()) == 5  # header + 4 epochs
    for a, b in zip(_weights(straight / "model.keras"), _weights(killed / "model.keras")):
        np.testing.assert_array_equal(a, b)
