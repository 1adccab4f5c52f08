#!/usr/bin/env bash
# The few-shot protocol end to end on SST-2 with the quickstart model (MiniLM, late prompt after
# layer 3, linear head): split (k = 100 in total, stratified; dev = 1,000 further training
# examples), train 1,000 steps with dev every 100 (best dev checkpoint), evaluate on the SST-2
# dev file as the test set, aggregate mean ± std over the seeds.
#
#   bash scripts/few_shot_sst2_minilm.sh [SST2_DIR] [OUT] [SEEDS...]
set -euo pipefail
sst2=${1:-data/sst2}
out=${2:-runs/few-shot-minilm}
shift $(( $# > 2 ? 2 : $# )) || true
seeds=${*:-13 21 42}
start=$(date +%s)
allennlp lpt-few-shot --input "$sst2/train.tsv" --format glue-tsv --task sst-2 --k 100 \
  --seeds $seeds --output "$out/data"
for seed in $seeds; do
  split="$out/data/sst-2/100-$seed"
  allennlp train training_configs/quickstart.jsonnet -s "$out/runs/sst-2/100-$seed" -f -o "{
    \"train_data_path\": \"$split/train.tsv\", \"validation_data_path\": \"$split/dev.tsv\",
    \"test_data_path\": \"$sst2/dev.tsv\", \"evaluate_on_test\": true,
    \"data_loader.batches_per_epoch\": 100, \"trainer.num_epochs\": 10,
    \"random_seed\": 42, \"numpy_seed\": 42, \"pytorch_seed\": 42}" > "$out/train-$seed.log" 2>&1
  echo "seed $seed: $(python -c "import json,sys; m=json.load(open(sys.argv[1])); print('test accuracy', round(m['test_accuracy'],4), 'best dev', round(m['best_validation_accuracy'],4))" "$out/runs/sst-2/100-$seed/metrics.json")"
done
allennlp lpt-aggregate "$out/runs" --output "$out/results.md"
echo "wall time: $(( $(date +%s) - start )) s"
