#!/usr/bin/env bash
# `make demo`: trains the quickstart config (MiniLM, late prompt after layer 3, demo data),
# prints its dev accuracy and one prediction. Run from the repository root.
set -euo pipefail
# Its own folder: `rm -rf` below must never touch runs/quickstart, which the README trains into.
out=${DEMO_DIR:-runs/demo}
rm -rf "$out"
mkdir -p "$(dirname "$out")"
echo "== Training training_configs/quickstart.jsonnet into $out (3 epochs: a few minutes on a 2-core CPU)"
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
allennlp predict "$out/model.tar.gz" "$input" --predictor lpt_classifier --silent \
  --output-file "$out/prediction.jsonl" > /dev/null 2>&1
python - "$out/prediction.jsonl" <<'PY'
import json, sys
prediction = json.loads(open(sys.argv[1]).readline())
names = {"0": "negative", "1": "positive"}
probs = ", ".join(f"{names[label]} {p:.3f}" for label, p in sorted(prediction["class_probabilities"].items()))
print(f"   label {prediction['label']} ({names[prediction['label']]}); probabilities: {probs}")
PY
rm -f "$input"
