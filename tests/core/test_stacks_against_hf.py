"""The core's layer ranges, prompt insertion and masks against HuggingFace's own forward pass,
for every model type the family registry accepts: the tests are parametrized by the registry, so
a model type added without a tiny model to compare (`tiny_models.build_all`) fails here."""
import pytest
import torch
from transformers import AutoConfig, AutoModel

from allennlp_lpt.core import LowerStack, UpperStack, supported_model_types
from hf_reference import hf_with_prompt

import allennlp_lpt  # noqa: F401  (registers every family before the registry is read)
from tiny_models import build_decoder

MODEL_TYPES = supported_model_types()


def test_every_registered_model_type_has_a_tiny_model(tiny_models):
    missing = [model_type for model_type in MODEL_TYPES if model_type not in tiny_models]
    assert not missing, f"add a tiny model of {missing} to tests/tiny_models.build_all"
    for model_type in MODEL_TYPES:
        assert AutoConfig.from_pretrained(tiny_models[model_type]).model_type == model_type


def _batch(model_dir: str):
    """Two inputs of different lengths, right-padded, as AllenNLP's indexer gives them."""
    torch.manual_seed(1)
    config = AutoConfig.from_pretrained(model_dir)
    ids = torch.randint(5, config.vocab_size, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    ids[~mask] = config.pad_token_id or 0
    return ids, mask


def _hf(model_dir: str):
    """HF's base model with its own eager attention: independent of the lean kernels."""
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager")
    model.eval()
    return model


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("prompt_layer", [0, 2, 3])
def test_lower_stack_equals_hf_hidden_states(tiny_models, model_type, prompt_layer):
    ids, mask = _batch(tiny_models[model_type])
    lower = LowerStack(tiny_models[model_type], prompt_layer).eval()
    ours = lower(ids, mask)
    expected = _hf(tiny_models[model_type])(
        input_ids=ids, attention_mask=mask.long(), output_hidden_states=True
    ).hidden_states[prompt_layer]
    assert ours.grad_fn is None
    real = mask[..., None]
    torch.testing.assert_close(ours * real, expected * real, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("prompt_layer", [1, 2])
def test_upper_stack_equals_hf_layers_over_prompt_and_states(tiny_models, model_type, prompt_layer):
    ids, mask = _batch(tiny_models[model_type])
    lower = LowerStack(tiny_models[model_type], prompt_layer).eval()
    upper = UpperStack(tiny_models[model_type], prompt_layer).eval()
    prompt = torch.randn(2, 3, lower.hidden_size)
    ours = upper(lower(ids, mask), mask, prompt)
    expected = hf_with_prompt(_hf(tiny_models[model_type]), ids, mask, prompt, prompt_layer)
    real = mask[..., None]
    torch.testing.assert_close(ours * real, expected * real, atol=1e-5, rtol=1e-4)


def test_mistral_sliding_window_is_applied(tiny_models):
    """The tiny Mistral's window (6) is shorter than the batch (9): without the window the
    states of the last tokens would differ from HF's."""
    assert AutoConfig.from_pretrained(tiny_models["mistral"]).sliding_window < 9
    ids, mask = _batch(tiny_models["mistral"])
    ours = LowerStack(tiny_models["mistral"], 3).eval()(ids, mask)
    no_window = AutoModel.from_pretrained(tiny_models["mistral"], attn_implementation="eager",
                                          sliding_window=None).eval()
    unwindowed = no_window(input_ids=ids, attention_mask=mask.long(),
                           output_hidden_states=True).hidden_states[3]
    assert not torch.allclose(ours[0, -1], unwindowed[0, -1], atol=1e-4)


def test_lower_stack_runs_only_the_layers_below_the_prompt(tiny_models):
    lower = LowerStack(tiny_models["roberta"], 2)
    upper = UpperStack(tiny_models["roberta"], 2)
    assert len(lower.layers) == 2 and len(upper.layers) == 2
    assert not any(p.requires_grad for p in lower.parameters())
    assert not any(p.requires_grad for p in upper.parameters())


# The rope scalings the Llama family accepts (fixed frequencies), against HF's own rotary code;
# transformers 5 applies them to Mistral and Qwen2 too.
ROPE_SCALINGS = {
    "llama-linear": {"rope_type": "linear", "factor": 2.0},
    "llama-llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
    "llama-yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64},
    "mistral-linear": {"rope_type": "linear", "factor": 2.0},
    "qwen2-yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64},
}


@pytest.fixture(scope="module")
def scaled_llamas(tmp_path_factory):
    root = tmp_path_factory.mktemp("rope")
    return {name: build_decoder(str(root / name), name.split("-")[0], rope_scaling=rope)
            for name, rope in ROPE_SCALINGS.items()}


@pytest.mark.parametrize("rope", list(ROPE_SCALINGS))
def test_rope_scalings_equal_hf(scaled_llamas, rope):
    folder = scaled_llamas[rope]
    ids, mask = _batch(folder)
    lower = LowerStack(folder, 2).eval()
    upper = UpperStack(folder, 2).eval()
    real = mask[..., None]
    expected = _hf(folder)(input_ids=ids, attention_mask=mask.long(),
                           output_hidden_states=True).hidden_states[2]
    torch.testing.assert_close(lower(ids, mask) * real, expected * real, atol=1e-5, rtol=1e-5)
    prompt = torch.randn(2, 3, lower.hidden_size)
    final = hf_with_prompt(_hf(folder), ids, mask, prompt, 2)
    torch.testing.assert_close(upper(lower(ids, mask), mask, prompt) * real, final * real,
                               atol=1e-5, rtol=1e-4)
