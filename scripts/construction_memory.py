"""
Peak memory while building a late-prompt model, against the size of one copy of its weights.

Builds a random-weight RoBERTa-shaped masked LM (roberta-base or roberta-large shape, or the
small shape the test uses), saves it, then in a fresh process builds the paper's
`late_prompt_classifier` (embedder, encoder, LM head: everything that reads the backbone) and
reports the growth of the process's peak resident memory during that build, measured from
`/proc/self/status` after resetting the peak (`/proc/self/clear_refs`), divided by the bytes of
one copy of the weights (tied weights once); then the same after reading every weight once (a
memory-mapped checkpoint is resident only once read).

    python scripts/construction_memory.py --shape base     # or large, small
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

SHAPES = {
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                  vocab_size=20000),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 vocab_size=50265),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                  intermediate_size=4096, vocab_size=50265),
}


def _status(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def save_model(folder: str, shape: str) -> int:
    """Saves a random masked LM of `shape` with a tokenizer whose mask and label words exist;
    returns the bytes of one copy of its weights."""
    import torch
    from transformers import RobertaConfig, RobertaForMaskedLM

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    from tiny_models import build_roberta  # the tiny model's tokenizer: label words are one token

    build_roberta(folder)
    build_roberta(os.path.join(folder, "warm-up"))
    config = RobertaConfig(max_position_embeddings=130, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, type_vocab_size=1, **SHAPES[shape])
    model = RobertaForMaskedLM(config)
    model.save_pretrained(folder)
    return sum(p.numel() * p.element_size() for p in model.parameters())


def measure(folder: str) -> dict:
    """In this (fresh) process: the peak growth of resident memory while building."""
    import allennlp_lpt  # noqa: F401
    from allennlp.common import Params
    from allennlp.data import Vocabulary
    from allennlp.models import Model

    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["0", "1"], "labels")

    def build(model_name: str):
        return Model.from_params(vocab=vocab, params=Params({
            "type": "late_prompt_classifier",
            "text_field_embedder": {"token_embedders": {"tokens": {
                "type": "late_prompt_transformer", "model_name": model_name, "prompt_layer": 2}}},
            "encoder": {"type": "late_prompt_roberta", "model_name": model_name, "prompt_layer": 2},
            "label_words": {"0": "terrible", "1": "great"},
        }))

    import gc

    # Once on the tiny model whose tokenizer the measured one uses: imports and lazy module
    # loading are paid here, not counted below.
    build(os.path.join(folder, "warm-up"))
    gc.collect()
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets VmHWM to the current resident size
    model = build(folder)
    peak = _status("VmHWM")
    # Weights loaded from a memory-mapped file may not be resident until read: read them all.
    for parameter in model.parameters():
        parameter.detach().sum()
    peak_read = _status("VmHWM")
    after = _status("VmRSS")
    storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return {"peak_growth": peak - before, "peak_growth_after_reading": peak_read - before,
            "retained": after - before, "storages": len(storages)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="base")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child's mode
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory() as folder:
        weights = save_model(folder, args.shape)
        child = subprocess.run(
            [sys.executable, __file__, "--measure", folder], capture_output=True, text=True, check=True
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
    result.update(shape=args.shape, weights=weights, peak_ratio=result["peak_growth"] / weights,
                  peak_ratio_after_reading=result["peak_growth_after_reading"] / weights,
                  retained_ratio=result["retained"] / weights)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
