#!/usr/bin/env bash
# `make demo`: trains the quickstart config (MiniLM, late prompt after layer 3, demo data),
# prints its dev accuracy and one prediction. Run from the repository root.
set -euo pipefail
out=${DEMO_DIR:-runs/quickstart}
rm -rf "$out"
mkdir -p "$(dirname "$out")"
echo "== Training training_configs/quickstart.jsonnet into $out (about a minute on a CPU)"
allennlp train training_configs/quickstart.jsonnet -s "$out" > "$out.log" 2>&1 \
  || { tail -30 "$out.log"; exit 1; }
python - "$out/metrics.json" <<'PY'
import json, sys
metrics = json.load(open(sys.argv[1]))
print(f"== Dev accuracy: {metrics['best_validation_accuracy']:.4f} "
      f"(best epoch {metrics['best_epoch']}, training {metrics['training_duration']})")
PY
input=$(mktemp)
echo '{"sentence": "a warm , funny and beautifully made film ."}' > "$input"
echo "== Prediction for: $(cat "$input")"
allennlp predict "$out/model.tar.gz" "$input" --silent --output-file "$out/prediction.jsonl" \
  > /dev/null 2>&1
python - "$out/prediction.jsonl" "$out/model.tar.gz" <<'PY'
import json, sys, tarfile
prediction = json.loads(open(sys.argv[1]).readline())
with tarfile.open(sys.argv[2]) as archive:  # probs are in the order of the label vocabulary
    labels = archive.extractfile("vocabulary/labels.txt").read().decode().split()
names = {"0": "negative", "1": "positive"}
probs = ", ".join(f"{names[label]} {p:.3f}" for label, p in zip(labels, prediction["probs"]))
print(f"   label {prediction['label']} ({names[prediction['label']]}); probabilities: {probs}")
PY
rm -f "$input"
