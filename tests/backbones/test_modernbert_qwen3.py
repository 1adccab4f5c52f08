"""
What the ModernBERT and Qwen3 adapters add to the Llama and encoder families, against HF's own
modules: ModernBERT's local window and per-kind rotary bases, its masked-LM head under the
verbalizer; Qwen3's norms on queries and keys. (Both families' stacks against HF's forward over
the prompt-extended sequence, at every tested prompt layer: tests/core/test_stacks_against_hf.)
"""
import peft
import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders import TokenEmbedder
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer

from allennlp_lpt.core import LowerStack, UpperStack
from hf_reference import hf_with_prompt
from models.test_late_prompt_classifier import PROMPT_LAYER, TEXTS, build, npg_prompt, tensors


def _batch(folder: str, length: int = 11):
    torch.manual_seed(3)
    config = AutoConfig.from_pretrained(folder)
    ids = torch.randint(5, config.vocab_size, (2, length))
    mask = torch.ones(2, length, dtype=torch.bool)
    mask[1, 7:] = False
    ids[~mask] = config.pad_token_id or 0
    return ids, mask


def test_modernbert_layers_alternate_global_and_local_attention(tiny_models):
    """The tiny model's local window (2 positions either side) is shorter than the batch: HF's
    states without it differ, and ours equal HF's with it (the window is applied where HF applies
    it, on the local layers only)."""
    folder = tiny_models["modernbert"]
    config = AutoConfig.from_pretrained(folder)
    assert config.layer_types == ["full_attention", "sliding_attention", "sliding_attention", "full_attention"]
    assert config.sliding_window == 2
    ids, mask = _batch(folder)
    ours = LowerStack(folder, 3).eval()(ids, mask)
    hf = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    expected = hf(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True).hidden_states[3]
    everywhere = AutoModel.from_pretrained(folder, attn_implementation="eager", local_attention=64).eval()
    unwindowed = everywhere(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True).hidden_states[3]
    real = mask[..., None]
    torch.testing.assert_close(ours * real, expected * real, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ours[0, -1], unwindowed[0, -1], atol=1e-4)


def test_modernbert_global_and_local_layers_rotate_with_their_own_bases(tiny_models):
    stack = LowerStack(tiny_models["modernbert"], 3)
    tables = stack.position_module.tables
    positions = torch.arange(6)
    full, local = tables["full_attention"](positions, torch.float32), tables["sliding_attention"](positions, torch.float32)
    hf = AutoModel.from_pretrained(tiny_models["modernbert"]).rotary_emb
    states = torch.zeros(1, 6, 32)
    for kind, (cos, sin) in (("full_attention", full), ("sliding_attention", local)):
        hf_cos, hf_sin = hf(states, positions[None], kind)
        torch.testing.assert_close(cos, hf_cos)
        torch.testing.assert_close(sin, hf_sin)
    assert not torch.allclose(full[0], local[0])


@pytest.mark.parametrize("prompt_length", [1, 6])
def test_modernbert_prompt_shorter_and_longer_than_the_window(tiny_models, prompt_length):
    """Prompt vectors that every local-layer token sees only partly (6 > 2): still HF's forward
    over `[prompt; tokens]`."""
    folder = tiny_models["modernbert"]
    ids, mask = _batch(folder)
    lower, upper = LowerStack(folder, 1).eval(), UpperStack(folder, 1).eval()
    prompt = torch.randn(2, prompt_length, 32)
    ours = upper(lower(ids, mask), mask, prompt)
    hf = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    expected = hf_with_prompt(hf, ids, mask, prompt, 1)
    real = mask[..., None]
    torch.testing.assert_close(ours * real, expected * real, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_modernbert_verbalizer_logits_equal_hf_masked_lm(tiny_models):
    folder = tiny_models["modernbert"]
    reader, vocab, model = build(folder, "modernbert")
    model.eval()
    batch = tensors(reader, vocab, TEXTS)
    ours = model(**batch)["logits"]

    hf = AutoModelForMaskedLM.from_pretrained(folder, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = batch["tokens"]["tokens"]["token_ids"]
    mask = batch["tokens"]["tokens"]["mask"]
    assert (ids[:, 0] == tokenizer.cls_token_id).all()
    states = hf.model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True)
    prompt = npg_prompt(model, states.hidden_states[PROMPT_LAYER][:, 0])  # reads [CLS]
    final = hf_with_prompt(hf.model, ids, mask, prompt, PROMPT_LAYER)
    at_mask = final[ids == tokenizer.mask_token_id]
    words = [tokenizer.encode(" " + w, add_special_tokens=False)[0] for w in ("terrible", "great")]
    expected = hf.decoder(hf.head(at_mask))[:, words]
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


def test_qwen3_attention_normalises_queries_and_keys_per_head(tiny_models, tmp_path):
    """A Qwen3 whose norms on queries and keys are not the identity's scale (random weights over
    `head_dim`, 16, not hidden / heads): ours equal HF's states, which differ from the model's
    with the norms' weights at one."""
    hf = AutoModel.from_pretrained(tiny_models["qwen3"], attn_implementation="eager").eval()
    assert hf.layers[0].self_attn.q_norm.weight.shape == (16,)
    ids, mask = _batch(tiny_models["qwen3"])
    plain = hf(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True).hidden_states[2]
    torch.manual_seed(5)
    for layer in hf.layers:
        for norm in (layer.self_attn.q_norm, layer.self_attn.k_norm):
            norm.weight.data = torch.rand(16) * 2
    hf.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_models["qwen3"]).save_pretrained(tmp_path)
    expected = hf(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True).hidden_states[2]
    ours = LowerStack(str(tmp_path), 2).eval()(ids, mask)
    real = mask[..., None]
    assert not torch.allclose(expected * real, plain * real, atol=1e-4)
    torch.testing.assert_close(ours * real, expected * real, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family,where,name", [
    ("modernbert", "attn", "LeanFusedAttention"), ("qwen3", "self_attn", "LeanQKNormAttention"),
])
def test_the_layers_the_core_runs_use_the_lean_attention(tiny_models, family, where, name):
    for stack in (LowerStack(tiny_models[family], 2), UpperStack(tiny_models[family], 2)):
        assert [type(getattr(layer, where)).__name__ for layer in stack.layers] == [name, name]


@pytest.mark.parametrize("method", [{"type": "lora", "r": 4, "alpha": 8}, {"type": "prompt_tuning", "num_virtual_tokens": 3}])
def test_modernbert_under_peft_methods_equals_peft_own_model(tiny_models, method):
    """LoRA (on the fused `Wqkv`, the family's `attention_projections`) and prompt tuning: the
    embedder's states are PEFT's own model's."""
    folder = tiny_models["modernbert"]
    torch.manual_seed(2)
    ours = TokenEmbedder.from_params(Params({"type": "peft_transformer", "model_name": folder,
                                             "method": dict(method)})).eval()
    reference = (peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["Wqkv"])
                 if method["type"] == "lora" else
                 peft.PromptTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=3))
    theirs = peft.get_peft_model(AutoModel.from_pretrained(folder), reference).eval()
    trained = [p for p in ours.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trained) == theirs.get_nb_trainable_parameters()[0]
    with torch.no_grad():
        for mine, their in zip(trained, [p for p in theirs.parameters() if p.requires_grad]):
            mine.copy_(torch.randn_like(mine))
            their.copy_(mine)
    ids, mask = _batch(folder)
    expected = theirs(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    if method["type"] == "prompt_tuning":
        expected = expected[:, 3:]  # PEFT puts the virtual tokens first
    real = mask[..., None]
    torch.testing.assert_close(ours(ids, mask) * real, expected * real, atol=1e-5, rtol=1e-4)


def test_prefix_tuning_is_refused_on_modernbert_by_name(tiny_models):
    with pytest.raises(ConfigurationError, match="'modernbert' model, whose attention takes no past keys"):
        TokenEmbedder.from_params(Params({"type": "peft_transformer", "model_name": tiny_models["modernbert"],
                                          "method": {"type": "prefix_tuning", "num_virtual_tokens": 3}}))
