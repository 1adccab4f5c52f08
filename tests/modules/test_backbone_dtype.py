"""`backbone_dtype`: the frozen weights stored in 16 bits, the generator and the head in float32."""
import json
import os

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.modules import Seq2VecEncoder, TokenEmbedder

from config_swap import CONFIGS, tiny_config
from test_late_prompt_components import TEXTS, tokenize


def halves(model_dir, dtype, family="roberta", encoder_type="late_prompt_roberta", seed=0):
    embedder = TokenEmbedder.from_params(Params({
        "type": "late_prompt_transformer", "model_name": model_dir, "prompt_layer": 2, "backbone_dtype": dtype}))
    torch.manual_seed(seed)
    encoder = Seq2VecEncoder.from_params(Params({
        "type": encoder_type, "model_name": model_dir, "prompt_layer": 2, "prompt_length": 3,
        "generator": {"type": "mppg"}, "backbone_dtype": dtype}))
    return embedder, encoder


@pytest.mark.parametrize("family,encoder_type", [("roberta", "late_prompt_roberta"), ("gpt2", "late_prompt_gpt2"),
                                                 ("llama", "late_prompt_causal"),
                                                 ("modernbert", "late_prompt_roberta"),
                                                 ("qwen3", "late_prompt_causal")])
@pytest.mark.parametrize("dtype,torch_dtype", [("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_sixteen_bit_backbone_float32_generator_and_output(tiny_models, family, encoder_type, dtype, torch_dtype):
    if torch_dtype == torch.float16 and family != "roberta":
        pytest.skip("float16 on the CPU: one family is enough")
    embedder, encoder = halves(tiny_models[family], dtype, family, encoder_type)
    reference_embedder, reference_encoder = halves(tiny_models[family], "float32", family, encoder_type)
    assert all(p.dtype == torch_dtype for p in embedder.parameters())
    assert all(p.dtype == torch_dtype for p in encoder.upper.parameters())
    assert all(p.dtype == torch.float32 for p in encoder.generator.parameters())
    ids, mask = tokenize(tiny_models[family], family, TEXTS)
    for module in (embedder, encoder, reference_embedder, reference_encoder):
        module.eval()
    pooled = encoder(embedder(ids, mask), mask)
    expected = reference_encoder(reference_embedder(ids, mask), mask)  # same generator weights (seed)
    assert pooled.dtype == torch.float32
    torch.testing.assert_close(pooled, expected, atol=0.1, rtol=0.05)
    # Training: float32 gradients on the generator only.
    encoder.train()
    output = encoder(embedder(ids, mask), mask)
    (output * torch.randn_like(output)).sum().backward()
    for name, parameter in encoder.generator.named_parameters():
        assert parameter.grad is not None and parameter.grad.dtype == torch.float32, name
    assert all(p.grad is None for p in list(embedder.parameters()) + list(encoder.upper.parameters()))


def test_static_memory_of_the_backbone_halves(tiny_models):
    def backbone_bytes(dtype):
        embedder, encoder = halves(tiny_models["roberta"], dtype)
        parameters = {id(p): p for p in list(embedder.parameters()) + list(encoder.upper.parameters())}
        return sum(p.numel() * p.element_size() for p in parameters.values())

    assert backbone_bytes("bfloat16") * 2 == backbone_bytes("float32")


def test_a_bad_dtype_and_halves_that_disagree_are_errors(tiny_models):
    with pytest.raises(ConfigurationError, match=r"backbone_dtype='half' is not one of 'float32', 'bfloat16', 'float16'"):
        halves(tiny_models["roberta"], "half")
    from allennlp_lpt.modules.pairing import check_pair

    embedder, _ = halves(tiny_models["roberta"], "bfloat16")
    _, encoder = halves(tiny_models["roberta"], "float32")
    with pytest.raises(ConfigurationError, match="disagree: backbone_dtype: .* bfloat16 .* float32"):
        check_pair(embedder, encoder)


@pytest.mark.parametrize("config", ["quickstart.jsonnet", "roberta-large/sst-2_full-data.jsonnet"])
def test_a_shipped_config_trains_with_a_bfloat16_backbone(tiny_models, tmp_path, config):
    path = tiny_config(os.path.join(CONFIGS, config), tiny_models, str(tmp_path), family="roberta", epochs=1)
    settings = json.load(open(path))
    model = settings["model"]
    model["text_field_embedder"]["token_embedders"]["tokens"]["backbone_dtype"] = "bfloat16"
    model["seq2vec_encoder" if "seq2vec_encoder" in model else "encoder"]["backbone_dtype"] = "bfloat16"
    with open(path, "w") as handle:
        json.dump(settings, handle)
    train_model_from_file(path, str(tmp_path / "run"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["training_loss"] == metrics["training_loss"]  # not NaN
    weights = torch.load(tmp_path / "run" / "best.th", weights_only=True)
    assert all(v.dtype == torch.float32 for k, v in weights.items() if "generator" in k)
    assert any(v.dtype == torch.bfloat16 for k, v in weights.items() if "generator" not in k)
