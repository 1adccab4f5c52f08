#!/usr/bin/env bash
# The CUDA checks, as one script for a lent GPU machine (see ../shared/ENVIRONMENT.md):
#   here:  bash ../shared/gpu/prepare.sh            (writes the ignored folder .gpu/)
#   there: source .gpu/activate.sh && bash scripts/gpu_check.sh   (carry .gpu)
# 1. the quickstart on CUDA for one epoch (demo data; then SST-2 if ../shared/data is there);
# 2. the cost benchmark at the paper's scale: RoBERTa-large 32 x 256, bf16;
# 3. a short table at the end.
set -uo pipefail
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
python -c "import torch; print('device:', torch.cuda.get_device_name(0), 'torch', torch.__version__)"
data='{"trainer.cuda_device": 0, "trainer.num_epochs": 1, "trainer.use_amp": true}'
if [ -f ../shared/data/sst2/train.tsv ]; then
  data='{"trainer.cuda_device": 0, "trainer.num_epochs": 1, "trainer.use_amp": true,
         "train_data_path": "../shared/data/sst2/train.tsv", "validation_data_path": "../shared/data/sst2/dev.tsv"}'
fi
start=$(date +%s)
python -m allennlp train training_configs/quickstart.jsonnet -s "$out/quickstart" -f -o "$data" \
  --include-package allennlp_lpt > "$out/quickstart.log" 2>&1
quickstart_rc=$?
quickstart_s=$(( $(date +%s) - start ))
python -m allennlp lpt-benchmark --device cuda --family roberta --size large --batch-size 32 \
  --length 256 --precision bf16 --steps 20 --output "$out/bench.jsonl" > "$out/bench.log" 2>&1
bench_rc=$?
echo "== quickstart on CUDA (rc $quickstart_rc, ${quickstart_s} s):"
python -c "import json; m=json.load(open('$out/quickstart/metrics.json')); print('  dev accuracy', m['best_validation_accuracy'], 'training', m['training_duration'])" 2>/dev/null || tail -20 "$out/quickstart.log"
echo "== benchmark RoBERTa-large 32 x 256 bf16 (rc $bench_rc):"
grep '^|' "$out/bench.log" || tail -20 "$out/bench.log"
