#!/usr/bin/env bash
# The GPU rows of docs/BENCHMARKS.md, on a Linux machine with an NVIDIA GPU, PyTorch and
# CUDA, the CPU build of onnxruntime and no TensorFlow (edgeproof need not be installed).
#
#   scripts/benchmarks/gpu_check.sh WHEELS MODELS [OUT]
#
# WHEELS: a folder with the onnxruntime-gpu wheel (and, on a box without a system CUDA 13 /
# cuDNN 9, the nvidia-* wheels of `pip download "onnxruntime-gpu[cuda,cudnn]==1.31.1"`);
# MODELS: the .onnx exports to measure (scripts/benchmarks/gpu_models.sh makes them);
# OUT: where the JSON goes (default docs/benchmarks/gpu). Runs in well under 10 minutes for
# the lab models plus InceptionV3 and ResNet50 (two providers, batch 1 and 32).
set -euo pipefail
cd "$(dirname "$0")/../.."
wheels=$1 models=$2 out=${3:-docs/benchmarks/gpu}
python -m pip uninstall -y -q onnxruntime 2>/dev/null || true  # the CPU build shadows the GPU one
python -m pip install -q --no-index --find-links "$wheels" onnxruntime-gpu
python -c "import onnxruntime as o; o.preload_dlls(); print(o.__version__, o.get_available_providers())"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python scripts/benchmarks/gpu_bench.py "$models" --out "$out" --providers cuda,tensorrt
