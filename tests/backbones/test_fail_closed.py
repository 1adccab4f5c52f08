"""
Families fail closed: a checkpoint whose config or modules hold something its family adapter
does not compute is refused at load with a ConfigurationError naming the model type and what is
not supported, instead of running as something else. One refused variant per check.
"""
import json
import os
import shutil

import pytest
import torch
from allennlp.common.checks import ConfigurationError
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

from allennlp_lpt.core import LowerStack, family_for_model
from allennlp_lpt.core.backbone import get_backbone


def _variant(source: str, folder: str, **changes) -> str:
    """A copy of the tiny model in `source` whose config.json has `changes`."""
    shutil.copytree(source, folder)
    path = os.path.join(folder, "config.json")
    with open(path) as handle:
        config = json.load(handle)
    config.update(changes)
    with open(path, "w") as handle:
        json.dump(config, handle)
    return folder


CONFIG_VARIANTS = [
    # (tiny model, config changes, what the error must name)
    ("bert", {"is_decoder": True}, "is_decoder=True"),
    ("roberta", {"add_cross_attention": True}, "add_cross_attention=True"),
    ("bert", {"position_embedding_type": "rotary"}, "position_embedding_type='rotary'"),
    ("gpt2", {"add_cross_attention": True}, "add_cross_attention=True"),
    ("llama", {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}, "'dynamic'"),
    ("llama", {"rope_scaling": {"rope_type": "longrope", "factor": 2.0, "short_factor": [1.0] * 4,
                                "long_factor": [1.0] * 4, "attention_factor": 1.0}}, "'longrope'"),
    ("qwen2", {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}, "'dynamic'"),
    ("qwen2", {"use_sliding_window": True}, "use_sliding_window=True"),
    ("llama", {"sliding_window": 16}, "sliding_window=16"),
    # Options of other architectures, saved under a supported model type: transformers keeps
    # them as attributes and ignores them, so the model would run as plain Llama / BERT.
    ("llama", {"attn_logit_softcapping": 50.0}, "attention logit soft-capping"),
    ("qwen2", {"final_logit_softcapping": 30.0}, "final logit soft-capping"),
    ("mistral", {"query_pre_attn_scalar": 224}, "a custom attention scale"),
    ("llama", {"embedding_multiplier": 12.0}, "embedding scaling"),
    ("llama", {"layer_types": ["sliding_attention", "full_attention"] * 2}, "differs per layer"),
    ("gpt2", {"partial_rotary_factor": 0.5}, "part of each head"),
    ("bert", {"qk_layernorm": True}, "norms on queries and keys"),
    # The new families' own checks: what their adapters do not compute.
    ("modernbert", {"layer_types": ["full_attention", "chunked_attention", "sliding_attention",
                                    "full_attention"]}, "'chunked_attention'"),
    ("modernbert", {"rope_parameters": {
        "full_attention": {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 160000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}},
     "'dynamic' on its full_attention layers"),
    ("qwen3", {"use_sliding_window": True}, "use_sliding_window=True"),
    ("qwen3", {"layer_types": ["full_attention", "sliding_attention"] * 2}, "differs per layer"),
    ("qwen3", {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}, "'dynamic'"),
]


@pytest.mark.parametrize("model_type,changes,named", CONFIG_VARIANTS,
                         ids=[f"{m}-{next(iter(c))}" for m, c, _ in CONFIG_VARIANTS])
def test_unsupported_config_options_are_refused(tiny_models, tmp_path, model_type, changes, named):
    folder = _variant(tiny_models[model_type], str(tmp_path / "variant"), **changes)
    # The reader and every component find the family through family_for_model; the backbone
    # loads through get_backbone: both refuse.
    for load in (lambda: family_for_model(folder), lambda: LowerStack(folder, 1)):
        with pytest.raises(ConfigurationError) as error:
            load()
        message = str(error.value)
        assert named in message and f"{model_type!r}" in message, message


def test_neutral_values_of_those_options_are_accepted(tiny_models, tmp_path):
    folder = _variant(tiny_models["llama"], str(tmp_path / "variant"), attn_logit_softcapping=None,
                      embedding_multiplier=1.0, qk_layernorm=False)
    assert LowerStack(folder, 1) is not None


def _extra_module(model: torch.nn.Module, path: str, name: str) -> None:
    setattr(model.get_submodule(path), name, torch.nn.LayerNorm(4))


STRUCTURE_VARIANTS = [
    # (tiny model, where a module with weights is added, its name): what each family refuses.
    ("bert", "bert.encoder.layer.1.attention.self", "q_norm"),
    ("roberta", "roberta.embeddings", "scale_norm"),
    ("roberta", "roberta.encoder.layer.0", "crossattention"),
    ("gpt2", "transformer.h.2", "ln_cross_attn"),
    ("gpt2", "transformer.h.0.attn", "q_attn"),
    ("llama", "model.layers.1.self_attn", "q_norm"),
    ("mistral", "model.layers.0", "pre_feedforward_layernorm"),
    ("qwen2", "model.layers.3.self_attn", "k_norm"),
    ("qwen3", "model.layers.2", "pre_feedforward_layernorm"),
    ("qwen3", "model.layers.1.self_attn", "sinks"),
    ("modernbert", "model.layers.1.attn", "q_norm"),
    ("modernbert", "model.embeddings", "position_embeddings"),
]


@pytest.mark.parametrize("model_type,path,name", STRUCTURE_VARIANTS,
                         ids=[f"{m}-{n}" for m, _, n in STRUCTURE_VARIANTS])
def test_modules_the_family_does_not_run_are_refused(tiny_models, model_type, path, name):
    folder = tiny_models[model_type]
    family = family_for_model(folder)
    loader = AutoModelForCausalLM if family.is_causal else AutoModelForMaskedLM
    model = loader.from_pretrained(folder)
    family.check_model(model, folder)  # the checkpoint as saved is accepted
    _extra_module(model, path, name)
    with pytest.raises(ConfigurationError) as error:
        family.check_model(model, folder)
    message = str(error.value)
    assert name in message and f"{model_type!r}" in message, message


def test_missing_modules_are_named(tiny_models):
    folder = tiny_models["llama"]
    model = AutoModelForCausalLM.from_pretrained(folder)
    del model.model.layers[0].self_attn.o_proj
    with pytest.raises(ConfigurationError, match=r"layer 0's attention .* lacks o_proj"):
        family_for_model(folder).check_model(model, folder)


@pytest.mark.parametrize("model_type,path,name", [
    ("qwen3", "model.layers.0.self_attn", "k_norm"), ("modernbert", "model.layers.2.attn", "Wqkv"),
])
def test_missing_modules_of_the_new_families_are_named(tiny_models, model_type, path, name):
    folder = tiny_models[model_type]
    family = family_for_model(folder)
    model = (AutoModelForCausalLM if family.is_causal else AutoModelForMaskedLM).from_pretrained(folder)
    delattr(model.get_submodule(path), name)
    with pytest.raises(ConfigurationError, match=rf"attention .* lacks {name}"):
        family.check_model(model, folder)


def test_every_registered_tiny_model_passes_its_family_check(tiny_models):
    """The check runs at every load; the models the reference tests compare all pass it."""
    for model_type, folder in tiny_models.items():
        backbone = get_backbone(folder)
        backbone.family.check_model(backbone.model, folder)
