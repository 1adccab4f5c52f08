"""Positions, the pooled last token, the answer's place and cache keys all count from the left:
a left-padded or gapped mask is a clear error at every entry point."""
import pytest
import torch

from test_late_prompt_components import TEXTS, build_pair, tokenize
from models.test_late_prompt_classifier import build, tensors


def left_padded(ids, mask, pad):
    """The same batch padded on the left instead."""
    lengths = mask.sum(1)
    new_ids, new_mask = torch.full_like(ids, pad), torch.zeros_like(mask)
    for row, length in enumerate(lengths.tolist()):
        new_ids[row, ids.size(1) - length:] = ids[row, :length]
        new_mask[row, ids.size(1) - length:] = True
    return new_ids, new_mask


@pytest.mark.parametrize("family", ["roberta", "gpt2", "llama"])
def test_the_embedder_and_the_encoder_refuse_a_left_padded_mask(tiny_models, family):
    embedder, encoder = build_pair(tiny_models[family], family)
    ids, mask = tokenize(tiny_models[family], family, TEXTS)
    left_ids, left_mask = left_padded(ids, mask, 0)
    with pytest.raises(ValueError, match=r"late_prompt_transformer: the mask of row 0 is \[0, .*not right-padded"):
        embedder(left_ids, left_mask)
    states = embedder(ids, mask)
    with pytest.raises(ValueError, match=rf"{encoder.encoder_type}: the mask of row 0 .*not right-padded"):
        encoder(states, left_mask)


def test_a_mask_with_a_gap_is_refused(tiny_models):
    embedder, _ = build_pair(tiny_models["roberta"], "roberta")
    ids, mask = tokenize(tiny_models["roberta"], "roberta", TEXTS)
    mask = mask.clone()
    mask[1, 2] = False
    with pytest.raises(ValueError, match=r"the mask of row 1 is \[1, 1, 0, 1"):
        embedder(ids, mask)


def test_generative_scoring_refuses_left_padded_contexts(tiny_models):
    reader, vocab, model = build(tiny_models["gpt2"], "gpt2")
    batch = tensors(reader, vocab, ["the movie was great fun", "bad"])
    field = batch["tokens"]["tokens"]
    field["token_ids"], field["mask"] = left_padded(field["token_ids"], field["mask"], 0)
    with pytest.raises(ValueError, match="late_prompt_classifier: the mask of row 1"):
        model(**batch)


def test_on_a_gpu_the_check_is_read_a_batch_later_and_at_the_epochs_end(tiny_models):
    """Reading a verdict back from a GPU would make the host wait for it at every step, so
    there the check raises at the component's next batch, or when the trainer switches it
    between train and eval (each epoch's end). `defer=True` gives that behaviour on the CPU."""
    embedder, encoder = build_pair(tiny_models["roberta"], "roberta")
    ids, mask = tokenize(tiny_models["roberta"], "roberta", TEXTS)
    _, left_mask = left_padded(ids, mask, 0)
    states = embedder(ids, mask)
    encoder._padding_check.defer = True
    encoder(states, mask)
    encoder(states, left_mask)  # not raised yet
    with pytest.raises(ValueError, match=r"the mask of row 0 .*not right-padded.*\(Batch 2 this component received"):
        encoder(states, mask)
    encoder(states, mask)  # reported once, then the component goes on
    encoder(states, left_mask)
    with pytest.raises(ValueError, match=r"row 0 .*Batch 5"):
        encoder.eval()


def test_a_verbalizer_batch_without_exactly_one_mask_token_is_refused(tiny_models):
    reader, vocab, model = build(tiny_models["roberta"], "roberta")
    batch = tensors(reader, vocab, ["the movie was great fun", "bad"])
    ids = batch["tokens"]["tokens"]["token_ids"]
    ids[1][ids[1] == reader.tokenizer.mask_token_id] = 5
    with pytest.raises(ValueError, match="exactly one mask token per input; row 1 has 0"):
        model(**batch)
