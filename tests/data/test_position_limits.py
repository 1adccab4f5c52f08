"""Inputs longer than the model has positions for: lowered to the limit with one warning where a
reader is built, refused by the benchmark and, with the key to set, by the embedder."""
import pytest
import torch
from allennlp.common import Params
from allennlp.data.dataset_readers import DatasetReader

from allennlp_lpt.core import LowerStack

# The tiny models' limits: RoBERTa numbers positions from pad + 1 (130 embeddings, 128
# positions); BERT 128 embeddings; GPT-2 n_positions 128; the Llama family 256.
LIMITS = {"roberta": 128, "bert": 128, "gpt2": 128, "llama": 256, "qwen2": 256}


@pytest.mark.parametrize("model_type", list(LIMITS))
@pytest.mark.parametrize("reader_type", ["lpt_tsv", "lpt_task"])
def test_max_length_over_the_limit_is_clamped_with_one_warning_at_construction(
    tiny_models, model_type, reader_type, caplog
):
    limit = LIMITS[model_type]
    params = {"type": reader_type, "model_name": tiny_models[model_type], "max_length": 1024}
    if reader_type == "lpt_task":
        params["task"] = "sst-2"
    with caplog.at_level("WARNING"):
        reader = DatasetReader.from_params(Params(dict(params)))
    assert reader.encoder.max_length == limit
    warnings = [r.getMessage() for r in caplog.records if "positions for" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "dataset_reader.max_length=1024" in warnings[0] and tiny_models[model_type] in warnings[0]
    assert f"at most {limit} tokens" in warnings[0]
    # Nothing longer than the model can position comes out of it.
    instance = reader.text_to_instance("the movie was great " * 300)
    assert len(instance["tokens"].tokens) <= limit
    caplog.clear()
    with caplog.at_level("WARNING"):
        params["max_length"] = limit
        assert DatasetReader.from_params(Params(dict(params))).encoder.max_length == limit
    assert not [r for r in caplog.records if "positions for" in r.getMessage()]


def test_legacy_archives_max_length_keeps_loading(tiny_models):
    """Configs saved by earlier versions carry max_length 512 (or a recipe's 256) whatever the
    model: they load, at the model's limit."""
    for value in (512, 256):
        reader = DatasetReader.from_params(Params({"type": "lpt_tsv", "model_name": tiny_models["gpt2"],
                                                   "max_length": value}))
        assert reader.encoder.max_length == 128


@pytest.mark.parametrize("model_type", list(LIMITS))
def test_default_max_length_is_the_smaller_of_512_and_the_limit(tiny_models, model_type):
    reader = DatasetReader.from_params(Params({"type": "lpt_tsv", "model_name": tiny_models[model_type]}))
    assert reader.encoder.max_length == min(512, LIMITS[model_type])
    # A text longer than that is truncated to fit, special tokens included.
    instance = reader.text_to_instance("the movie was great " * 200)
    assert len(instance["tokens"].tokens) == reader.encoder.max_length


def test_a_batch_longer_than_the_positions_is_a_clear_error(tiny_models):
    """What reaches the embedder from another reader (without our max_length) fails with the
    limit and the key to set, not inside the position embeddings."""
    lower = LowerStack(tiny_models["bert"], 2)
    ids = torch.ones(1, 129, dtype=torch.long)
    with pytest.raises(ValueError, match=r"129 tokens .* positions for \(128\).*dataset_reader\.max_length"):
        lower(ids, torch.ones_like(ids, dtype=torch.bool))
    assert lower(ids[:, :128], torch.ones(1, 128, dtype=torch.bool)).shape == (1, 128, 32)


def test_benchmark_length_over_the_limit(tiny_models):
    from allennlp_lpt.experiments.benchmark import Settings

    with pytest.raises(ValueError, match=r"--length 129: .* 1 to 128 tokens"):
        Settings(model_name=tiny_models["gpt2"], length=129)
    with pytest.raises(ValueError, match=r"--length 513: the roberta base shape .* 1 to 512"):
        Settings(family="roberta", size="base", length=513)
    assert Settings(model_name=tiny_models["llama"], length=256).length == 256

