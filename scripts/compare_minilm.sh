#!/usr/bin/env bash
# Every tuning method on all-MiniLM-L6-v2, SST-2 / TREC / Subj: each method's learning rate
# searched (Optuna, TRIALS trials on the dev set, first seed), then its best trained with 3 seeds,
# at equal epochs and at equal wall time (docs/RESULTS.md, "Late prompt beside the other methods").
#
#   scripts/compare_minilm.sh DATA OUT [TRAIN_SENTENCES] [EPOCHS] [TASKS] [TRIALS] [PHASES]
#
# DATA: the folder holding sst2/, trec/ and subj/ (their README describes them). The first
# TRAIN_SENTENCES (default 1000) training rows of each task are written to OUT/data/; the dev and
# test files are read whole; every run trains EPOCHS epochs (default 2). TRIALS (default 8) trials
# per method, the median pruner judging from the 4th trial on. At equal time, each task's budget is
# late prompt's median training time at equal epochs; the methods that took longer are trained
# again, with the learning rate their search chose, stopped at the budget; the others finished
# within it (the budget would not stop them: their runs would be the same). TASKS: some of
# "sst2 trec subj" (two invocations with different TASKS may run side by side, one per core:
# taskset -c N, OMP_NUM_THREADS=1). PHASES: "equal_epochs equal_time" (the default), or one of
# them (a task's equal_time needs its equal_epochs finished). METHODS (environment) overrides the
# list of methods.
set -euo pipefail
data=$1; out=$2; n=${3:-1000}; epochs=${4:-2}; tasks=${5:-sst2 trec subj}; trials=${6:-8}
phases=${7:-equal_epochs equal_time}
methods=${METHODS:-late_prompt,lora,ia3,prompt_tuning,prefix_tuning,bitfit,loreft,full}
seeds="13 21 42"
pruner='{"type": "MedianPruner", "n_startup_trials": 3}'
mkdir -p "$out/data"
for task in sst2 trec subj; do
  mkdir -p "$out/data/$task"
  if [ "$task" = sst2 ]; then head -n $((n + 1)) "$data/sst2/train.tsv"; else head -n "$n" "$data/$task/train.tsv"; fi \
    > "$out/data/$task/train.tsv.$$"
  # Replaced only when it differs: another invocation's runs may be reading it.
  if cmp -s "$out/data/$task/train.tsv.$$" "$out/data/$task/train.tsv"; then rm "$out/data/$task/train.tsv.$$"
  else mv "$out/data/$task/train.tsv.$$" "$out/data/$task/train.tsv"; fi
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
  [[ " $phases " == *" equal_epochs "* ]] || continue
  allennlp lpt-compare training_configs/quickstart.jsonnet -s "$out/$task/equal_epochs" \
    --methods "$methods" --seeds $seeds --trials "$trials" --pruner "$pruner" -o "$(overrides $task)"
done
for task in $tasks; do
  [[ " $phases " == *" equal_time "* ]] || continue
  here=$out/$task/equal_epochs
  budget=$(python -c "import csv; rows={r['method']: r for r in csv.DictReader(open('$here/comparison.csv'))}; print(rows['late_prompt']['train_seconds'])")
  slower=$(python -c "import csv; rows=list(csv.DictReader(open('$here/comparison.csv'))); print(','.join(r['method'] for r in rows if float(r['train_seconds']) > $budget))")
  [ -n "$slower" ] || continue
  # Each method's best completed trial (the search's choice: best dev score, lowest number among equals).
  best=$(python -c "
import csv, json
best = {}
for r in csv.DictReader(open('$here/search.csv')):
    if r['state'] != 'COMPLETE':
        continue
    key = (-float(r[[c for c in r if c.startswith('dev_')][0]]), int(r['trial']))
    if r['method'] not in best or key < best[r['method']][0]:
        best[r['method']] = (key, json.loads(r['params']))
print(json.dumps({m: p for m, (_, p) in best.items() if m in '$slower'.split(',')}))")
  allennlp lpt-compare training_configs/quickstart.jsonnet -s "$out/$task/equal_time" \
    --methods "$slower" --seeds $seeds -o "$(overrides $task)" --method-options "$best" --time-budget "$budget"
done
