"""PyTorch models made the way a user makes them: by plain PyTorch in its own process, not
by edgeproof. ``make_torch_models(folder)`` runs ``SCRIPT`` in a subprocess and returns the
files it wrote.

The model is a Conv-BN-ReLU CNN with a residual block, NCHW, 3 channels, trained for a few
seconds on scikit-learn's digits at 16x16 (grey repeated to RGB) with a per-channel
``Normalize(MEAN, STD)`` in its data pipeline, as torchvision users write it; the means
and deviations differ per channel, so a runtime that ignored them would answer otherwise.

Files: ``net.pt2`` (torch.export, dynamic batch, contiguous example), ``net_b1.pt2``
(a batch-1 example: the batch is fixed), ``net_cl.pt2`` (the example permuted from an
NHWC numpy batch: channels_last), ``net.pt`` (TorchScript, traced), ``net.onnx`` +
``net.onnx.data`` (torch.onnx.export's default: dynamo, weights beside the graph),
``state_dict.pt`` and ``pickled.pt`` (torch.save files edgeproof must refuse), and
``two_inputs.pt2``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MEAN = (0.2, 0.4, 0.6)
STD = (0.5, 0.25, 0.4)
PREPROCESS = ("mean=" + ",".join(map(str, MEAN)) + ",std=" + ",".join(map(str, STD))
              + ",colour=rgb")

SCRIPT = r'''
import sys, numpy as np, torch, torch.nn as nn
from PIL import Image
from sklearn.datasets import load_digits
out = sys.argv[1]
MEAN, STD = np.array(%(mean)r, np.float32), np.array(%(std)r, np.float32)
torch.manual_seed(0)
d = load_digits()
px = np.stack([np.asarray(Image.fromarray((im * 255 / 16).astype(np.uint8)).resize((16, 16), Image.BILINEAR))
               for im in d.images])
x = np.repeat(px[..., None], 3, axis=-1).astype(np.float32) / 255.0
x = (x - MEAN) / STD                                    # Normalize(mean, std), per channel
xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
yt = torch.from_numpy(d.target.astype(np.int64))

class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
    def forward(self, x):
        return torch.relu(x + self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12),
                                  nn.ReLU(), nn.MaxPool2d(2))
        self.block, self.head = Block(12), nn.Linear(12, 10)
    def forward(self, x):
        return self.head(self.block(self.stem(x)).mean((2, 3)))

m = Net()
opt = torch.optim.Adam(m.parameters(), 3e-3)
for epoch in range(12):
    perm = torch.randperm(len(xt))
    for i in range(0, len(xt), 64):
        idx = perm[i:i + 64]
        opt.zero_grad()
        nn.functional.cross_entropy(m(xt[idx]), yt[idx]).backward()
        opt.step()
m.eval()
with torch.no_grad():
    print("train accuracy", float((m(xt).argmax(1) == yt).float().mean()))
ex = xt[:2].clone()  # a slice would keep (and save) the whole tensor
batch = torch.export.Dim("batch", min=1, max=4096)
torch.export.save(torch.export.export(m, (ex,), dynamic_shapes=({0: batch},)), out + "/net.pt2")
torch.export.save(torch.export.export(m, (xt[:1].clone(),)), out + "/net_b1.pt2")
cl = torch.from_numpy(x[:2].copy()).permute(0, 3, 1, 2)       # NHWC numpy permuted: channels_last
assert cl.is_contiguous(memory_format=torch.channels_last)
torch.export.save(torch.export.export(m, (cl,)), out + "/net_cl.pt2")
torch.jit.save(torch.jit.trace(m, ex), out + "/net.pt")
torch.onnx.export(m, (ex,), out + "/net.onnx")        # torch 2.13's default: dynamo + .data
torch.save(m.state_dict(), out + "/state_dict.pt")
torch.save(m, out + "/pickled.pt")

class Two(nn.Module):
    def forward(self, a, b):
        return m(a) + m(b)
torch.export.save(torch.export.export(Two(), (ex, ex)), out + "/two_inputs.pt2")
'''


def make_torch_models(folder: Path) -> dict[str, Path]:
    """Run ``SCRIPT`` in a fresh Python process; ``{file name: path}`` of what it wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", SCRIPT % {"mean": MEAN, "std": STD},
                           str(folder)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError("the PyTorch model script failed:\n" + proc.stderr[-3000:])
    return {p.name: p for p in folder.iterdir()}
