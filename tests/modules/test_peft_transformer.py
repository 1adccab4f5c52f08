"""peft_transformer against PEFT's own model on every family: same final states, same trainable
parameter count; its bad input; the shared backbone left as it was."""
import sys

import peft
import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders import TokenEmbedder
from transformers import AutoModel

from allennlp_lpt.core.backbone import get_backbone

FAMILIES = ["roberta", "bert", "gpt2", "llama", "mistral", "qwen2", "qwen3"]
METHODS = {
    "lora": {"type": "lora", "r": 4, "alpha": 8},
    "ia3": {"type": "ia3"},
    "prompt_tuning": {"type": "prompt_tuning", "num_virtual_tokens": 3},
    "prefix_tuning": {"type": "prefix_tuning", "num_virtual_tokens": 3},
}
# What PEFT's own config is, written out independently of the package's defaults.
REFERENCE = {
    "lora": lambda family: peft.LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.1, fan_in_fan_out=family == "gpt2",
        target_modules={"gpt2": ["c_attn"], "roberta": ["query", "value"], "bert": ["query", "value"]}.get(family, ["q_proj", "v_proj"])),
    "ia3": lambda family: peft.IA3Config(fan_in_fan_out=family == "gpt2"),  # PEFT's per-type defaults
    "prompt_tuning": lambda family: peft.PromptTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=3),
    "prefix_tuning": lambda family: peft.PrefixTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=3),
}


def embedder(model_name, method, **options):
    return TokenEmbedder.from_params(Params({"type": "peft_transformer", "model_name": model_name,
                                             "method": dict(method), **options}))


def batch(vocab_size=100, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (3, 9), generator=generator)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 6:] = False
    mask[2, 4:] = False
    return ids, mask


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("family", FAMILIES)
def test_the_states_and_counts_are_peft_own(tiny_models, family, method):
    ours = embedder(tiny_models[family], METHODS[method]).eval()
    theirs = peft.get_peft_model(AutoModel.from_pretrained(tiny_models[family]), REFERENCE[method](family)).eval()
    ours_trained = [p for p in ours.parameters() if p.requires_grad]
    theirs_trained = [p for p in theirs.parameters() if p.requires_grad]
    # The trainable parameter count is PEFT's own.
    assert sum(p.numel() for p in ours_trained) == theirs.get_nb_trainable_parameters()[0]
    # Random values in both (LoRA's B starts at zero, IA3 at one: the check would be vacuous).
    torch.manual_seed(1)
    with torch.no_grad():
        for mine, reference in zip(ours_trained, theirs_trained):
            assert mine.shape == reference.shape
            mine.copy_(torch.randn_like(mine) * 0.5 + (1.0 if method == "ia3" else 0.0))
            reference.copy_(mine)
    ids, mask = batch()
    states = ours(ids, mask)
    assert states.shape == (3, 9, 32)
    expected = theirs(input_ids=ids, attention_mask=mask.long()).last_hidden_state[:, ours.method.virtual_tokens:]
    torch.testing.assert_close(states[mask], expected[mask], atol=2e-5, rtol=1e-4)


def test_the_shared_backbone_gets_no_adapter(tiny_models):
    lora = embedder(tiny_models["roberta"], METHODS["lora"])
    shared = get_backbone(tiny_models["roberta"]).model
    assert not any("lora" in name for name, _ in shared.named_modules())
    assert not any(p.requires_grad for p in shared.parameters())
    assert any("lora_A" in name for name, _ in lora.named_parameters())


def test_a_slim_embedder_saves_only_what_trains(tiny_models):
    slim = embedder(tiny_models["bert"], METHODS["lora"], save_backbone=False)
    keys = list(slim.state_dict())
    assert keys and all("lora_" in key for key in keys)
    full = embedder(tiny_models["bert"], METHODS["lora"])
    assert len(full.state_dict()) > len(keys)


def test_type_ids_reach_bert_with_lora(tiny_models):
    lora = embedder(tiny_models["bert"], METHODS["lora"]).eval()
    ids, mask = batch()
    assert not torch.equal(lora(ids, mask, torch.zeros_like(ids)), lora(ids, mask, torch.ones_like(ids)))


@pytest.mark.parametrize("method, message", [
    ({"type": "lora", "r": 0}, r"peft_transformer\.method\.r=0: give an integer of 1 or more"),
    ({"type": "prompt_tuning", "num_virtual_tokens": 0}, r"method\.num_virtual_tokens=0"),
    ({"type": "prefix_tuning", "num_virtual_tokens": -2}, r"method\.num_virtual_tokens=-2"),
    ({"type": "lora", "target_modules": ["q_proj"]}, r"target_modules: .* \(bert family\) has no module named 'q_proj'\. Its weight modules are: .*query.*value"),
    ({"type": "ia3", "target_modules": ["key"], "feedforward_modules": ["dense"]}, r"feedforward_modules: \['dense'\] are not in target_modules"),
    ({"type": "adapter"}, r"adapter"),
])
def test_bad_methods_are_configuration_errors(tiny_models, method, message):
    with pytest.raises(ConfigurationError, match=message):
        embedder(tiny_models["bert"], method)


def test_peft_missing_is_a_configuration_error_with_the_fix(tiny_models, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` then raises ImportError
    with pytest.raises(ConfigurationError, match=r"PEFT, which does not import here .*pip install -r requirements.txt"):
        embedder(tiny_models["bert"], METHODS["lora"])


def test_inputs_past_the_positions_left_by_the_prompt_are_refused(tiny_models):
    prompt = embedder(tiny_models["roberta"], {"type": "prompt_tuning", "num_virtual_tokens": 10})
    ids = torch.full((1, 125), 7)  # tiny RoBERTa: 128 positions past its padding offset
    with pytest.raises(ValueError, match="lower dataset_reader.max_length"):
        prompt(ids, torch.ones_like(ids, dtype=torch.bool))


@pytest.mark.parametrize("family, limit", [("roberta", 128), ("bert", 128), ("gpt2", 128), ("llama", 256)])
def test_prefix_tuning_counts_its_virtual_tokens_in_the_position_limit(tiny_models, family, limit):
    """The prefix enters as past keys and values, so the tokens' positions start after it: at
    `limit - n + 1` tokens BERT, RoBERTa and GPT-2 would index past their position embeddings
    (the rotary Llama past its trained positions). Refused first, with the key and the fix."""
    prefix = embedder(tiny_models[family], {"type": "prefix_tuning", "num_virtual_tokens": 10}).eval()
    too_long = torch.full((1, limit - 9), 7)
    with pytest.raises(ValueError, match=rf"inputs of {limit - 9} tokens.* positions for {limit - 10} "
                                         rf".*dataset_reader\.max_length to {limit - 10} or less"):
        prefix(too_long, torch.ones_like(too_long, dtype=torch.bool))
    fits = too_long[:, 1:]
    assert prefix(fits, torch.ones_like(fits, dtype=torch.bool)).shape == (1, limit - 10, 32)
