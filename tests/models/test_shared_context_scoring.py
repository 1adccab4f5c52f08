"""
Generative scoring with the context run once for every answer candidate (evaluation and
prediction) against one row per (context, candidate), the path training keeps: the same scores
for every causal model type, with answers of different token lengths and padded batches.
"""
import pytest
import torch
from allennlp.common import Params
from allennlp.data import Batch, DatasetReader, Vocabulary
from allennlp.models import Model
from transformers import AutoTokenizer

TEXTS = [
    "the movie was great fun",
    "a boring film , it was not good and the plot was bad and the acting was bad",
    "it is a story",
]
# Label words of one and of three tokens (each word is one token of the tiny tokenizers).
WORDS = {"0": "terrible", "1": "very good fun", "2": "boring"}


def build(model_dir, *, answer_suffix, prompt_layer=2, generator="mppg"):
    reader = DatasetReader.from_params(
        Params({"type": "lpt_tsv", "model_name": model_dir, "template": "{s} It was"})
    )
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(sorted(WORDS), namespace="labels")
    model = Model.from_params(vocab=vocab, params=Params({
        "type": "late_prompt_classifier",
        "text_field_embedder": {"token_embedders": {"tokens": {
            "type": "late_prompt_transformer", "model_name": model_dir, "prompt_layer": prompt_layer}}},
        "encoder": {"type": "late_prompt_causal", "model_name": model_dir, "prompt_layer": prompt_layer,
                    "prompt_length": 3, "generator": {"type": generator}},
        "label_words": WORDS,
        "answer_suffix": answer_suffix,
    }))
    instances = [reader.text_to_instance(text, label=str(i % 3)) for i, text in enumerate(TEXTS)]
    for instance in instances:
        reader.apply_token_indexers(instance)
    batch = Batch(instances)
    batch.index_instances(vocab)
    return model.eval(), batch.as_tensor_dict()


@torch.no_grad()
@pytest.mark.parametrize("model_type", ["gpt2", "llama", "mistral", "qwen2", "qwen3"])
@pytest.mark.parametrize("answer_suffix", [" .", ""])
@pytest.mark.parametrize("generator", ["mppg", "npg"])
def test_shared_context_scores_equal_one_row_per_candidate(tiny_models, model_type, answer_suffix, generator):
    model, batch = build(tiny_models[model_type], answer_suffix=answer_suffix, generator=generator)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models[model_type])
    suffix = tokenizer.encode(answer_suffix, add_special_tokens=False)
    lengths = [len(tokenizer.encode(" " + WORDS[label], add_special_tokens=False)) + len(suffix) + 1
               for label in sorted(WORDS)]
    assert sorted(set(lengths)) == [len(suffix) + 2, len(suffix) + 4]  # words of 1 and 3 tokens
    mask = batch["tokens"]["tokens"]["mask"]
    assert not mask.all()  # a padded batch
    shared = model(**batch)["logits"]
    per_row = -model._answer_nll(
        batch["tokens"],
        model._answer_ids[None].expand(len(TEXTS), -1, -1),
        model._answer_lengths[None].expand(len(TEXTS), -1),
    )
    assert shared.shape == (3, 3)
    torch.testing.assert_close(shared, per_row, atol=1e-5, rtol=1e-5)


def test_mistral_window_matters_here(tiny_models):
    """The tiny Mistral's window (6) is shorter than these rows, so the layout's windowing by
    position is what the comparison above checks."""
    model, batch = build(tiny_models["mistral"], answer_suffix=" .")
    assert batch["tokens"]["tokens"]["mask"].sum(1).max() > 6


def test_a_context_and_answer_past_the_positions_is_a_clear_error(tiny_models):
    model, _ = build(tiny_models["gpt2"], answer_suffix=" .")
    ids = torch.ones(1, 125, dtype=torch.long)
    tokens = {"tokens": {"token_ids": ids, "mask": torch.ones_like(ids, dtype=torch.bool),
                         "type_ids": torch.zeros_like(ids)}}
    with pytest.raises(ValueError, match=r"contexts of 125 tokens and answers of up to 5 .*\(128\)"):
        model(tokens=tokens)
