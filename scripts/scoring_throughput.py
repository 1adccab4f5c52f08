"""
Evaluation throughput of generative scoring (late_prompt_classifier on a causal model): every
candidate answer over one pass of its context (what evaluation and prediction run) against one
row per (context, candidate) (what training runs for the gold answer), in one process, on the
same model and batches. Random weights of GPT-2 and Llama shapes, a BPE tokenizer trained here
on the label words (no hub); the score is what matters, not the weights.

    python scripts/scoring_throughput.py [--shapes tiny,base] [--batch-size 16] [--repeats 5]

Prints a markdown table: examples per second of each path and their ratio, for 2 candidates
(SST-2's words) and 6 (TREC's).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

WORDS = {2: ["terrible", "great"],
         6: ["Description", "Entity", "Expression", "Human", "Location", "Number"]}
SHAPES = {  # (hidden, layers, heads, intermediate)
    "tiny": (64, 4, 2, 256),
    "base": (768, 12, 12, 3072),
}


def build(folder: str, family: str, shape: str) -> str:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (AutoModelForCausalLM, GPT2Config, GPT2TokenizerFast, LlamaConfig,
                              LlamaTokenizerFast)

    words = " ".join(w for group in WORDS.values() for w in group)
    corpus = [f"{w} the movie was {w} . It was {w} ! {w}" for w in words.split()] * 30 + [
        "a b c d e f g h i j k l m n o p q r s t u v w x y z . , ?"] * 5
    bpe = ByteLevelBPETokenizer()
    os.makedirs(folder, exist_ok=True)
    hidden, layers, heads, intermediate = SHAPES[shape]
    torch.manual_seed(0)
    if family == "gpt2":
        bpe.train_from_iterator(corpus, vocab_size=1000, min_frequency=1, special_tokens=["<|endoftext|>"], show_progress=False)
        bpe.save_model(folder)
        tokenizer = GPT2TokenizerFast(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"))
        config = GPT2Config(vocab_size=len(tokenizer), n_positions=512, n_embd=hidden, n_layer=layers,
                            n_head=heads, n_inner=intermediate, bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id)
    else:
        bpe.train_from_iterator(corpus, vocab_size=1000, min_frequency=1, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
        tokenizer = LlamaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                       unk_token="<unk>", add_bos_token=True, legacy=False)
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                             num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                             intermediate_size=intermediate, max_position_embeddings=512,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    tokenizer.save_pretrained(folder)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    return folder


def classifier(folder: str, family: str, num_labels: int):
    from allennlp.common import Params
    from allennlp.data import Vocabulary
    from allennlp.models import Model

    import allennlp_lpt  # noqa: F401
    from allennlp_lpt.core import load_backbone_config

    layers = load_backbone_config(folder).num_hidden_layers
    vocab = Vocabulary()
    labels = [str(i) for i in range(num_labels)]
    vocab.add_tokens_to_namespace(labels, namespace="labels")
    encoder = "late_prompt_gpt2" if family == "gpt2" else "late_prompt_causal"
    shared = {"model_name": folder, "prompt_layer": layers // 2}
    return Model.from_params(vocab=vocab, params=Params({
        "type": "late_prompt_classifier",
        "text_field_embedder": {"token_embedders": {"tokens": {"type": "late_prompt_transformer", **shared}}},
        "encoder": {"type": encoder, **shared, "generator": {"type": "npg"}},
        "label_words": dict(zip(labels, WORDS[num_labels])),
    })).eval()


def batch(vocab_size: int, batch_size: int, seed: int):
    """Right-padded contexts of 16 to 48 tokens, as a task's reader gives them."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(16, 49, (batch_size,), generator=generator)
    ids = torch.randint(5, vocab_size, (batch_size, int(lengths.max())), generator=generator)
    mask = torch.arange(ids.size(1))[None] < lengths[:, None]
    ids[~mask] = 0
    return {"tokens": {"token_ids": ids, "mask": mask, "type_ids": torch.zeros_like(ids)}}


def per_row(model, tokens):
    rows = tokens["tokens"]["token_ids"].size(0)
    return -model._answer_nll(tokens, model._answer_ids[None].expand(rows, -1, -1),
                              model._answer_lengths[None].expand(rows, -1))


def shared(model, tokens):
    return -model._answer_nll_shared(tokens)


@torch.no_grad()
def measure(model, batches, path, repeats: int) -> float:
    """Examples per second: the median over `repeats` passes over `batches` (after one warm-up)."""
    path(model, batches[0])
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for tokens in batches:
            path(model, tokens)
        elapsed = time.perf_counter() - start
        rates.append(sum(t["tokens"]["token_ids"].size(0) for t in batches) / elapsed)
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default="gpt2,llama")
    parser.add_argument("--shapes", default="tiny,base")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"contexts of 16-48 tokens, answers: word + ' .' + eos", file=sys.stderr)
    print("| model | candidates | one row per candidate (examples/s) | shared context (examples/s) | speed-up | max score difference |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        for family in args.families.split(","):
            for shape in args.shapes.split(","):
                folder = build(os.path.join(root, f"{family}-{shape}"), family, shape)
                for candidates in (2, 6):
                    model = classifier(folder, family, candidates)
                    vocab = model._lm_head.head.weight.size(0) if hasattr(model._lm_head.head, "weight") else 1000
                    batches = [batch(min(vocab, 1000), args.batch_size, seed) for seed in range(args.batches)]
                    with torch.no_grad():
                        difference = max(float((per_row(model, t) - shared(model, t)).abs().max()) for t in batches)
                    slow = measure(model, batches, per_row, args.repeats)
                    fast = measure(model, batches, shared, args.repeats)
                    print(f"| {family} {shape} | {candidates} | {slow:.1f} | {fast:.1f} | {fast / slow:.2f}x | {difference:.1e} |",
                          flush=True)


if __name__ == "__main__":
    main()
