"""Each family's lean attention against HuggingFace's eager attention over the same weights."""
import pytest
import torch
from transformers import AutoModel
from allennlp.common.checks import ConfigurationError

from allennlp_lpt.backbones.bert import LeanSelfAttention
from allennlp_lpt.backbones.gpt2 import LeanGPT2Attention
from allennlp_lpt.core import LowerStack, UpperStack, attention_bias

LENGTH = 7


def _pair(model_dir, family):
    """HF's eager attention of the first layer and the lean module over the same weights."""
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager")
    if family == "gpt2":
        eager = model.h[0].attn
        return eager, LeanGPT2Attention(eager)
    eager = model.encoder.layer[0].attention.self
    lean = LeanSelfAttention(eager, num_heads=model.config.num_attention_heads)
    return eager, lean


def _attention_dropout(lean):
    return lean.attn_dropout if isinstance(lean, LeanGPT2Attention) else lean.dropout


def _inputs(lean, family):
    torch.manual_seed(0)
    hidden = lean.embed_dim if family == "gpt2" else lean.query.in_features
    states = torch.randn(2, LENGTH, hidden)
    mask = torch.ones(2, LENGTH, dtype=torch.bool)
    mask[1, 5:] = False  # the second example is 5 tokens long
    return states, attention_bias(mask, torch.float32, causal=family == "gpt2")


def _output(module, states, bias):
    """HF's eager GPT-2 attention adds its own causal mask as well: the same result."""
    return module(states, attention_mask=bias)[0]


@pytest.mark.parametrize("family", ["roberta", "bert", "gpt2"])
def test_lean_attention_equals_hf_eager_attention(tiny_models, family):
    eager, lean = _pair(tiny_models[family], family)
    eager.eval(), lean.eval()
    states, bias = _inputs(lean, family)
    real = torch.tensor([[True] * LENGTH, [True] * 5 + [False] * 2])[..., None]
    torch.testing.assert_close(_output(lean, states, bias) * real,
                               _output(eager, states, bias) * real, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["roberta", "gpt2"])
def test_attention_dropout_is_unbiased_on_the_cpu(tiny_models, family):
    """Dropout acts on the probabilities after the softmax, scaled by 1 / (1 - p): the mean over
    many training-mode draws is the eval-mode output."""
    _, lean = _pair(tiny_models[family], family)
    _attention_dropout(lean).p = 0.3
    if family == "gpt2":
        lean.resid_dropout.p = 0.0  # only the attention dropout is under test
    states, bias = _inputs(lean, family)
    with torch.no_grad():
        expected = _output(lean.eval(), states, bias)
        lean.train()
        draws = torch.stack([_output(lean, states, bias) for _ in range(4000)])
    assert not torch.allclose(draws[0], expected, atol=1e-3)  # dropout did act
    torch.testing.assert_close(draws.mean(0), expected, atol=0.02, rtol=0.05)


@pytest.mark.parametrize("family", ["roberta", "gpt2"])
def test_without_dropout_no_probability_matrix_is_kept_for_backward(tiny_models, family):
    _, lean = _pair(tiny_models[family], family)
    lean.train()
    _attention_dropout(lean).p = 0.0
    states, bias = _inputs(lean, family)
    states.requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        _output(lean, states, bias).sum().backward()
    assert saved and (2, lean.num_heads, LENGTH, LENGTH) not in saved


@pytest.mark.parametrize("family", ["roberta", "gpt2"])
def test_unsupported_arguments_are_refused(tiny_models, family):
    _, lean = _pair(tiny_models[family], family)
    states, bias = _inputs(lean, family)
    with pytest.raises(ValueError, match="output_attentions"):
        lean(states, attention_mask=bias, output_attentions=True)


@pytest.mark.parametrize("family,name", [
    ("roberta", "LeanSelfAttention"), ("xlm-roberta", "LeanSelfAttention"),
    ("camembert", "LeanSelfAttention"), ("bert", "LeanSelfAttention"),
    ("gpt2", "LeanGPT2Attention"),
    ("llama", "LeanRotaryAttention"), ("mistral", "LeanRotaryAttention"), ("qwen2", "LeanRotaryAttention"),
])
def test_the_layers_the_core_runs_use_the_lean_attention(tiny_models, family, name):
    """Every accepted model type gets the lean module over the same weights (XLM-RoBERTa's and
    CamemBERT's attention classes are copies of RoBERTa's, not subclasses);
    test_stacks_against_hf compares the stacks with HF's own layers."""
    for stack in (LowerStack(tiny_models[family], 2), UpperStack(tiny_models[family], 2)):
        for layer in stack.layers:
            if family == "gpt2":
                attention = layer.attn
            elif name == "LeanRotaryAttention":
                attention = layer.self_attn
            else:
                attention = layer.attention.self
            assert type(attention).__name__ == name


@pytest.mark.parametrize("kind", ["relative_key", "relative_key_query"])
def test_relative_position_bert_is_refused_naming_the_option(tiny_models, tmp_path, kind):
    """transformers 5 dropped BERT's relative position embeddings and silently runs such a
    checkpoint with absolute positions: the model is refused, not run as another one."""
    model = AutoModel.from_pretrained(tiny_models["bert"])
    model.config.position_embedding_type = kind
    model.save_pretrained(tmp_path)
    with pytest.raises(ConfigurationError, match=rf"position_embedding_type='{kind}' \(relative position embeddings, which transformers 5"):
        LowerStack(str(tmp_path), 3)


def test_gpt2_variants_the_lean_module_does_not_compute_keep_hf_attention(tiny_models, tmp_path):
    model = AutoModel.from_pretrained(tiny_models["gpt2"])
    model.config.scale_attn_by_inverse_layer_idx = True
    model.save_pretrained(tmp_path)
    stack = UpperStack(str(tmp_path), 2)
    assert all(type(block.attn).__name__ != "LeanGPT2Attention" for block in stack.layers)
