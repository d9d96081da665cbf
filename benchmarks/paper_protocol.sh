#!/usr/bin/env bash
# The paper's protocol on a GPU, in one run: fine-tuning throughput of EfficientNet-Lite0 and
# VGG19-BN (bf16 autocast, channels_last), then a 5-fold fine-tune of the default variant
# (`train.finetune: true`, the paper's settings: 20 epochs, batch 32, learning rates 0.001 for
# the backbone and 0.01 for the head) through the pipeline's own stages, and its evaluation.
#
#   benchmarks/paper_protocol.sh /path/to/Emotion6.zip OUT_DIR [section.key=value ...]
#
# The key=value pairs override params (as `dvc exp run -S` would); BENCH_BACKBONES and
# BENCH_STEPS (default: efficientnet_lite0 vgg19_bn, 20) set the throughput measurement.
# It edits params.yaml in place (data.source, train.finetune and the overrides): run it in a
# scratch clone. The stages run in dvc.yaml's order without DVC, so that it also runs where DVC
# is not installed (a GPU machine with PyTorch only). Results and a log go to OUT_DIR.
set -euo pipefail
archive=$1
out=$2
shift 2
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
log="$out/log.txt"
python - "$archive" "$@" <<'PY'
import sys

import yaml

p = yaml.safe_load(open("params.yaml"))
p["data"]["source"] = sys.argv[1]
p["train"]["finetune"] = True
for override in sys.argv[2:]:
    key, value = override.split("=", 1)
    section, name = key.split(".")
    p[section][name] = yaml.safe_load(value)
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
print("params:", p["train"], p["model"])
PY
{
    python -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU')"
    for stage in download preprocess split features; do
        t0=$SECONDS
        python -m stages.$stage
        echo "$stage: $((SECONDS - t0)) s"
    done
    python benchmarks/finetune.py --backbones ${BENCH_BACKBONES:-efficientnet_lite0 vgg19_bn} --steps "${BENCH_STEPS:-20}" | tee "$out/throughput.txt"
    start=$SECONDS
    folds=$(python -c "import yaml; print(yaml.safe_load(open('params.yaml'))['split']['folds'])")
    for ((fold = 0; fold < folds; fold++)); do
        python -m stages.train --fold $fold
        echo "fold $fold done after $((SECONDS - start)) s"
    done
    python -m stages.evaluate
    echo "train (all folds) + evaluate: $((SECONDS - start)) s"
    cp metrics/metrics.json metrics/folds.json metrics/predictions.csv plots/learning_curve.csv "$out/"
} 2>&1 | tee "$log"
