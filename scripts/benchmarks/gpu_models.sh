#!/usr/bin/env bash
# The .onnx files gpu_check.sh measures, made on a machine with edgeproof installed.
#
#   scripts/benchmarks/gpu_models.sh OUT
#
# Lab models (lab_model7, praisynet, lab_dropout_model5 on CIFAR-10 shapes, 2 epochs on
# ../shared) as onnx-fp32, and InceptionV3-150 / ResNet50-224 (random init: latency does
# not depend on the weights) as onnx-fp16: fp32 files of the two transfer models are about
# 90 MB each, more than a 64 MB transfer limit allows; on a GPU box of your own use fp32.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$1
cifar=../shared/datasets/cifar10.npz
mkdir -p "$out"
for m in lab_model7 praisynet lab_dropout_model5; do
    edgeproof train --dataset "$cifar" --model "$m" --epochs 2 --batch-size 128 \
        --train-fraction 0.2 --out "$out/train-$m" --force --quiet
    edgeproof export "$out/train-$m/model.keras" --format onnx-fp32 --name "$m" \
        --out "$out" --force --quiet
    rm -rf "$out/train-$m"
done
for m in inception_v3 resnet50; do
    python scripts/benchmarks/bench_models.py "$m" --epochs 1 --formats onnx-fp16 --out "$out/$m"
done
