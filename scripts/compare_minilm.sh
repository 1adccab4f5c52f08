#!/usr/bin/env bash
# Every tuning method on all-MiniLM-L6-v2, SST-2 / TREC / Subj, 3 seeds, at equal epochs and at
# equal wall time (docs/RESULTS.md, "Late prompt beside the other methods").
#
#   scripts/compare_minilm.sh DATA OUT [TRAIN_SENTENCES] [EPOCHS] [TASKS]
#
# DATA: the folder holding sst2/, trec/ and subj/ (their README describes them). The first
# TRAIN_SENTENCES (default 2000) training rows of each task are written to OUT/data/; the
# dev and test files are read whole; every run trains EPOCHS epochs (default 2). At equal time, each task's budget is late prompt's median
# training time at equal epochs; the methods that finished their epochs within it already are
# not run again (the budget would not stop them: their runs would be the same). TASKS: some of
# "sst2 trec subj" (two invocations with different TASKS may run side by side, one per core:
# taskset -c N, OMP_NUM_THREADS=1).
set -euo pipefail
data=$1; out=$2; n=${3:-2000}; epochs=${4:-2}; tasks=${5:-sst2 trec subj}
methods=late_prompt,lora,ia3,prompt_tuning,prefix_tuning,bitfit,full
seeds="13 21 42"
mkdir -p "$out/data"
for task in sst2 trec subj; do
  mkdir -p "$out/data/$task"
  if [ "$task" = sst2 ]; then head -n $((n + 1)) "$data/sst2/train.tsv"; else head -n "$n" "$data/$task/train.tsv"; fi \
    > "$out/data/$task/train.tsv"
done
overrides() {  # the quickstart's reader and data paths for one task
  case $1 in
    sst2) echo "{\"trainer.num_epochs\": $epochs, \"train_data_path\": \"$out/data/sst2/train.tsv\", \"validation_data_path\": \"$data/sst2/dev.tsv\"}" ;;
    trec) echo "{\"trainer.num_epochs\": $epochs, \"train_data_path\": \"$out/data/trec/train.tsv\", \"validation_data_path\": \"$data/trec/dev.tsv\",
                 \"test_data_path\": \"$data/trec/test.tsv\", \"evaluate_on_test\": true,
                 \"dataset_reader.format\": \"label-tsv\", \"dataset_reader.labels\": [\"0\",\"1\",\"2\",\"3\",\"4\",\"5\"]}" ;;
    subj) echo "{\"trainer.num_epochs\": $epochs, \"train_data_path\": \"$out/data/subj/train.tsv\", \"validation_data_path\": \"$data/subj/dev.tsv\",
                 \"test_data_path\": \"$data/subj/test.tsv\", \"evaluate_on_test\": true,
                 \"dataset_reader.format\": \"label-tsv\"}" ;;
  esac
}
for task in $tasks; do
  allennlp lpt-compare training_configs/quickstart.jsonnet -s "$out/$task/equal_epochs" \
    --methods "$methods" --seeds $seeds -o "$(overrides $task)"
done
for task in $tasks; do
  table=$out/$task/equal_epochs/comparison.csv
  budget=$(python -c "import csv,sys; rows={r['method']: r for r in csv.DictReader(open('$table'))}; print(rows['late_prompt']['train_seconds'])")
  slower=$(python -c "import csv; rows=list(csv.DictReader(open('$table'))); print(','.join(r['method'] for r in rows if float(r['train_seconds']) > $budget))")
  [ -n "$slower" ] || continue
  allennlp lpt-compare training_configs/quickstart.jsonnet -s "$out/$task/equal_time" \
    --methods "$slower" --seeds $seeds -o "$(overrides $task)" --time-budget "$budget"
done
