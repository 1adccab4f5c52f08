import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.modules import Seq2VecEncoder, TokenEmbedder
from transformers import AutoTokenizer, DistilBertConfig

ENCODER = {
    "roberta": "late_prompt_roberta", "bert": "late_prompt_roberta", "gpt2": "late_prompt_gpt2",
    "llama": "late_prompt_causal", "mistral": "late_prompt_causal", "qwen2": "late_prompt_causal",
    "qwen3": "late_prompt_causal", "modernbert": "late_prompt_roberta",
}
FAMILIES = list(ENCODER)
GENERATORS = ["npg", "mppg", "appg", "static"]


def build_pair(model_dir, family, *, prompt_layer=2, generator="npg", prompt_length=3, **encoder):
    embedder = TokenEmbedder.from_params(
        Params({"type": "late_prompt_transformer", "model_name": model_dir, "prompt_layer": prompt_layer})
    )
    encoder = Seq2VecEncoder.from_params(
        Params(
            {
                "type": ENCODER[family],
                "model_name": model_dir,
                "prompt_layer": prompt_layer,
                "prompt_length": prompt_length,
                "generator": {"type": generator},
                **encoder,
            }
        )
    )
    return embedder, encoder


def tokenize(model_dir, family, texts):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    for text in texts:
        ids = tokenizer.encode(text)
        rows.append(([tokenizer.bos_token_id] + ids) if family == "gpt2" else ids)
    length = max(map(len, rows))
    pad = tokenizer.pad_token_id or 0
    token_ids = torch.tensor([row + [pad] * (length - len(row)) for row in rows])
    mask = torch.tensor([[True] * len(row) + [False] * (length - len(row)) for row in rows])
    return token_ids, mask


TEXTS = ["the movie was great", "a really boring and bad film , not fun . it was terrible"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("generator", GENERATORS)
def test_an_example_alone_and_in_a_padded_batch_gives_the_same_output(tiny_models, family, generator):
    torch.manual_seed(0)
    embedder, encoder = build_pair(tiny_models[family], family, generator=generator)
    embedder.eval(), encoder.eval()
    ids, mask = tokenize(tiny_models[family], family, TEXTS)
    batch = encoder(embedder(ids, mask), mask)
    short = int(mask[0].sum())
    alone = encoder(embedder(ids[:1, :short], mask[:1, :short]), mask[:1, :short])
    torch.testing.assert_close(alone[0], batch[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_roberta_pooling_options(tiny_models, pooling):
    embedder, encoder = build_pair(tiny_models["roberta"], "roberta", pooling=pooling)
    embedder.eval(), encoder.eval()
    ids, mask = tokenize(tiny_models["roberta"], "roberta", TEXTS)
    final = encoder.encode_tokens(embedder(ids, mask), mask)
    pooled = encoder(embedder(ids, mask), mask)
    if pooling == "first":
        expected = final[:, 0]
    else:
        expected = torch.stack([final[i, mask[i]].mean(0) for i in range(2)])
    torch.testing.assert_close(pooled, expected)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_causal_every_real_token_sees_every_prompt_vector(tiny_models, family):
    embedder, encoder = build_pair(tiny_models[family], family, generator="static", prompt_length=4)
    embedder.eval(), encoder.eval()
    ids, mask = tokenize(tiny_models[family], family, TEXTS)
    states = embedder(ids, mask)
    reference = encoder.upper(states, mask, encoder.generator(states, mask, None))
    for j in range(4):
        prompt = encoder.generator(states, mask, None).clone()
        prompt[:, j] += torch.randn(prompt.size(-1))  # not a constant: LayerNorm would remove it
        changed = encoder.upper(states, mask, prompt)
        # The first real token sees only the prompts and itself: it changes for every j.
        delta = (changed - reference).abs().amax(-1)
        assert bool((delta[mask] > 1e-4).all()), f"prompt vector {j} is not seen by every token"


def test_gpt2_prompt_vectors_see_only_earlier_prompts(tiny_models):
    from allennlp_lpt.core import attention_bias, prepend_prompt

    mask = torch.tensor([[True, True, False]])
    _, extended = prepend_prompt(torch.zeros(1, 3, 2), mask, torch.zeros(1, 2, 2))
    allowed = attention_bias(extended, torch.float32, causal=True)[0, 0] == 0
    assert allowed[:2, :2].tolist() == [[True, False], [True, True]]
    assert bool(allowed[2:, :2].all())  # every token sees every prompt
    assert not bool(allowed[:, 4].any())  # nobody sees padding


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_causal_encoders_pool_the_last_real_token(tiny_models, family):
    embedder, encoder = build_pair(tiny_models[family], family)
    embedder.eval(), encoder.eval()
    ids, mask = tokenize(tiny_models[family], family, TEXTS)
    final = encoder.encode_tokens(embedder(ids, mask), mask)
    pooled = encoder(embedder(ids, mask), mask)
    last = mask.sum(1) - 1
    torch.testing.assert_close(pooled, final[torch.arange(2), last])
    assert int(last[0]) < ids.size(1) - 1  # the short example is padded


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("generator", GENERATORS)
def test_only_the_generator_gets_gradients(tiny_models, family, generator):
    embedder, encoder = build_pair(tiny_models[family], family, generator=generator)
    ids, mask = tokenize(tiny_models[family], family, TEXTS)
    states = embedder(ids, mask)
    assert states.grad_fn is None and not states.requires_grad
    pooled = encoder(states, mask)
    # A random projection: the plain sum of a LayerNorm output is constant and has no gradient.
    (pooled * torch.randn_like(pooled)).sum().backward()
    generator_params = list(encoder.generator.named_parameters())
    assert generator_params
    for name, parameter in generator_params:
        assert parameter.requires_grad and parameter.grad is not None, name
        assert bool(parameter.grad.abs().sum() > 0), name
    for module in (embedder, encoder.upper):
        for name, parameter in module.named_parameters():
            assert not parameter.requires_grad and parameter.grad is None, name


def test_lower_dropout_off_makes_the_frozen_states_deterministic(tiny_models):
    embedder = TokenEmbedder.from_params(
        Params({"type": "late_prompt_transformer", "model_name": tiny_models["roberta"],
                "prompt_layer": 2, "lower_dropout": False})
    )
    embedder.train()
    ids, mask = tokenize(tiny_models["roberta"], "roberta", TEXTS)
    torch.testing.assert_close(embedder(ids, mask), embedder(ids, mask))


# ---- construction errors ---------------------------------------------------------------


def test_prompt_layer_out_of_range_states_the_valid_range(tiny_models):
    for layer in (-1, 4):
        with pytest.raises(ConfigurationError, match=r"prompt_layer=.*use 0 .* to 3"):
            build_pair(tiny_models["roberta"], "roberta", prompt_layer=layer)


def test_prompt_length_below_one(tiny_models):
    with pytest.raises(ConfigurationError, match="prompt_length=0.*>= 1"):
        build_pair(tiny_models["roberta"], "roberta", prompt_length=0)


def test_prompt_layer_zero_needs_a_static_prompt(tiny_models):
    with pytest.raises(ConfigurationError, match="static"):
        build_pair(tiny_models["roberta"], "roberta", prompt_layer=0, generator="npg")
    embedder, encoder = build_pair(tiny_models["roberta"], "roberta", prompt_layer=0, generator="static")
    assert len(embedder.stack.layers) == 0 and len(encoder.upper.layers) == 4


def test_encoder_on_the_wrong_family(tiny_models):
    with pytest.raises(ConfigurationError, match="use the .late_prompt_causal. encoder"):
        Seq2VecEncoder.from_params(
            Params({"type": "late_prompt_roberta", "model_name": tiny_models["gpt2"], "prompt_layer": 2})
        )
    with pytest.raises(ConfigurationError, match="late_prompt_roberta"):
        Seq2VecEncoder.from_params(
            Params({"type": "late_prompt_gpt2", "model_name": tiny_models["bert"], "prompt_layer": 2})
        )


def test_unsupported_model_type_lists_the_supported_ones(tmp_path):
    DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=50).save_pretrained(tmp_path)
    with pytest.raises(ConfigurationError, match="'distilbert'.*Supported model types: .*bert.*gpt2.*roberta"):
        TokenEmbedder.from_params(
            Params({"type": "late_prompt_transformer", "model_name": str(tmp_path), "prompt_layer": 1})
        )


def test_missing_model_folder_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="model_name=.*no HuggingFace model config"):
        TokenEmbedder.from_params(
            Params({"type": "late_prompt_transformer", "model_name": str(tmp_path / "nothing"), "prompt_layer": 1})
        )


def test_late_prompt_gpt2_serves_gpt2_only(tiny_models):
    """`late_prompt_gpt2` is the GPT-2 configs' name; a Llama-family model takes
    `late_prompt_causal`."""
    with pytest.raises(ConfigurationError, match="use the 'late_prompt_causal' encoder"):
        Seq2VecEncoder.from_params(
            Params({"type": "late_prompt_gpt2", "model_name": tiny_models["llama"], "prompt_layer": 2})
        )
