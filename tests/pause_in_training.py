"""`edgeproof ARGS`, paused at a chosen training step so that a test can kill it there.

    python tests/pause_in_training.py EPOCH BATCH MARKER edgeproof-args...

runs the `edgeproof` command with one extra Keras callback (appended after the command's
own, so BackupAndRestore and CSVLogger have finished the previous epoch) that, at the end
of batch BATCH of epoch EPOCH (both 0-based), writes the file MARKER and then waits.
A test waits for MARKER and sends SIGKILL: the kill lands on that step on any machine,
however loaded, instead of racing a clock or a file that training keeps changing."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def install(epoch: int, batch: int, marker: Path) -> None:
    """Make every ``Model.fit`` of this process pause at (``epoch``, ``batch``)."""
    from edgeproof.tfcompat import keras

    k = keras()

    class PauseAt(k.callbacks.Callback):
        epoch_now = -1

        def on_epoch_begin(self, e, logs=None):
            self.epoch_now = e

        def on_train_batch_end(self, b, logs=None):
            if (self.epoch_now, b) == (epoch, batch):
                tmp = marker.with_name(marker.name + ".tmp")
                tmp.write_text(str(os.getpid()))
                os.replace(tmp, marker)  # appears whole: the test never reads half a file
                time.sleep(3600)  # held here until the test kills the process

    fit = k.Model.fit

    def fit_and_pause(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=[*(callbacks or []), PauseAt()], **kwargs)

    k.Model.fit = fit_and_pause


if __name__ == "__main__":
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # tests/ first would shadow names (tests/bench, tests/export, …)
    install(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
    from edgeproof.cli.main import main

    sys.argv = ["edgeproof", *sys.argv[4:]]
    sys.exit(main())
