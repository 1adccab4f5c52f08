"""LoReFT (`loreft` through `reft_transformer`): the edit is Φ(h) = h + Rᵀ(Wh + b − Rh) at the
first and last real tokens of the chosen layers, checked against HuggingFace's own forward on
every family; R keeps orthonormal rows while it trains; only R, W and b train; the output of a
row does not depend on its batch-mates; bad options name their key. (Its archives, with either
head: tests/test_method_archives.py.)"""
import json
import os

import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders import TokenEmbedder
from transformers import AutoModel

from allennlp_lpt.core.backbone import get_backbone
from allennlp_lpt.core.interventions import edge_positions
from allennlp_lpt.experiments import benchmark
from allennlp_lpt.experiments.methods import with_method
from config_swap import CONFIGS, tiny_config

FAMILIES = ["roberta", "bert", "gpt2", "llama"]  # one per family adapter (backbones/)


def embedder(model_name, **method):
    return TokenEmbedder.from_params(Params({"type": "reft_transformer", "model_name": model_name,
                                             "method": {"type": "loreft", **method}}))


def batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (3, 9), generator=generator)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 6:] = False
    mask[2, 3:] = False  # 3 real tokens: fewer than first + last below, each edited once
    return ids, mask


def chosen(mask, first, last):
    """The positions to edit, counted in Python from each row's real tokens."""
    where = torch.zeros_like(mask)
    for row in range(mask.size(0)):
        real = [i for i in range(mask.size(1)) if mask[row, i]]
        for i in real[:first] + real[len(real) - last:]:
            where[row, i] = True
    return where


def loreft(h, rotation, weight, bias):
    """The paper's formula, written out: h + Rᵀ(Wh + b − Rh)."""
    return h + (h @ weight.T + bias - h @ rotation.T) @ rotation


def weights_of(edit):
    return edit.rotation.weight.detach(), edit.source.weight.detach(), edit.source.bias.detach()


@pytest.mark.parametrize("family", FAMILIES)
def test_the_edit_is_the_formula_on_hf_own_states(tiny_models, family):
    ours = embedder(tiny_models[family], layers=[2, 4], first_positions=2, last_positions=2, rank=3).eval()
    theirs = AutoModel.from_pretrained(tiny_models[family]).eval()
    with torch.no_grad():  # W and b away from their start, so a wrong sign or transpose shows
        for edit in ours.edits.edits.values():
            edit.source.weight.normal_(0, 0.5)
            edit.source.bias.normal_(0, 0.5)
    ids, mask = batch()
    where = chosen(mask, 2, 2)[..., None]
    hf = theirs(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True).hidden_states
    run = ours.transformer.model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True)
    # Up to layer 2 nothing differs; layer 2's output (HF's hidden_states[2], what layer 3 reads)
    # is the formula at the chosen positions and HF's own state everywhere else.
    torch.testing.assert_close(run.hidden_states[1][mask], hf[1][mask], atol=2e-5, rtol=1e-4)
    expected = torch.where(where, loreft(hf[2], *weights_of(ours.edits.edits["2"])), hf[2])
    torch.testing.assert_close(run.hidden_states[2][mask], expected[mask], atol=2e-5, rtol=1e-4)
    assert not torch.allclose(expected[mask], hf[2][mask])

    # The whole forward: HF's model with the formula applied by hooks written here.
    def edit_with(layer):
        def hook(module, args, output):
            # transformers 5's layers return the states; 4.x's a tuple starting with them.
            h = output if isinstance(output, torch.Tensor) else output[0]
            edited = torch.where(where, loreft(h, *weights_of(ours.edits.edits[str(layer)])), h)
            return edited if isinstance(output, torch.Tensor) else (edited,) + output[1:]
        return hook

    layers = {"roberta": lambda m: m.encoder.layer, "bert": lambda m: m.encoder.layer,
              "gpt2": lambda m: m.h}.get(family, lambda m: m.layers)(theirs)
    for layer in (2, 4):
        layers[layer - 1].register_forward_hook(edit_with(layer))
    expected = theirs(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    torch.testing.assert_close(ours(ids, mask)[mask], expected[mask], atol=2e-5, rtol=1e-4)


def test_the_positions_are_the_first_and_last_real_tokens_on_either_padding_side():
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 10, (16,), generator=generator)
    right = torch.arange(10)[None] < lengths[:, None]
    left = right.flip(1)
    for first, last in ((1, 0), (0, 1), (2, 3), (7, 7)):
        assert torch.equal(edge_positions(right, first, last), chosen(right, first, last))
        assert torch.equal(edge_positions(left, first, last), chosen(left, first, last))


def test_r_keeps_orthonormal_rows_and_only_r_w_and_b_train(tiny_models):
    ours = embedder(tiny_models["bert"], layers=[1, 3], rank=4, last_positions=1).train()
    trained = {name for name, p in ours.named_parameters() if p.requires_grad}
    assert trained == {f"edits.edits.{layer}.{name}" for layer in (1, 3) for name in (
        "rotation.parametrizations.weight.original", "source.weight", "source.bias")}
    start = {layer: edit.rotation.weight.detach().clone() for layer, edit in ours.edits.edits.items()}
    optimizer = torch.optim.Adam([p for p in ours.parameters() if p.requires_grad], lr=0.05)
    ids, mask = batch()
    for _ in range(5):
        loss = ours(ids, mask)[mask].pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    for layer, edit in ours.edits.edits.items():
        rotation = edit.rotation.weight.detach()
        assert not torch.allclose(rotation, start[layer], atol=1e-3)  # R moved ...
        torch.testing.assert_close(rotation @ rotation.T, torch.eye(4), atol=1e-5, rtol=0)  # ... and stays orthonormal
    # The shared backbone is untouched: no gradient, no hook.
    shared = get_backbone(tiny_models["bert"]).model
    assert all(p.grad is None and not p.requires_grad for p in shared.parameters())
    assert not any(module._forward_hooks for module in shared.modules())


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_an_input_does_not_depend_on_its_batch_mates(tiny_models, family):
    ours = embedder(tiny_models[family], first_positions=1, last_positions=2).eval()
    ids, mask = batch()
    together = ours(ids, mask)
    for row in range(3):
        n = int(mask[row].sum())
        alone = ours(ids[row:row + 1, :n], mask[row:row + 1, :n])
        torch.testing.assert_close(together[row, :n], alone[0], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("options, message", [
    ({"layers": [0, 2]}, r"reft_transformer\.method\.layers: \[0\] not among the layers of .* which has 4; give layers 1 to 4"),
    ({"layers": [5]}, r"reft_transformer\.method\.layers: \[5\] not among the layers"),
    ({"layers": "some"}, r'reft_transformer\.method\.layers=.some.: give "all" or a list'),
    ({"layers": 3}, r'reft_transformer\.method\.layers=3: give "all" or a non-empty list of layer numbers'),
    ({"rank": 33}, r"reft_transformer\.method\.rank=33 is more than the hidden size of .* \(32\)"),
    ({"rank": 0}, r"reft_transformer\.method\.rank=0: give an integer of 1 or more"),
    ({"first_positions": -1}, r"reft_transformer\.method\.first_positions=-1: give an integer of 0 or more"),
    ({"last_positions": -2}, r"reft_transformer\.method\.last_positions=-2"),
    ({"first_positions": 0}, r"first_positions and last_positions are both 0"),
    ({"dropout": 1.0}, r"reft_transformer\.method\.dropout=1\.0: give a probability"),
])
def test_bad_options_are_configuration_errors_naming_the_key(tiny_models, options, message):
    with pytest.raises(ConfigurationError, match=message):
        embedder(tiny_models["bert"], **options)


def test_reft_transformer_refuses_other_methods_and_cache_keys(tiny_models):
    with pytest.raises(ConfigurationError, match="reft_transformer.method: 'lora' does not edit hidden states.*takes loreft"):
        TokenEmbedder.from_params(Params({"type": "reft_transformer", "model_name": tiny_models["bert"],
                                          "method": {"type": "lora"}}))
    ids, mask = batch()
    with pytest.raises(ConfigurationError, match="only late_prompt_transformer caches states"):
        embedder(tiny_models["bert"])(ids, mask, row_keys=object())


def test_the_swap_drops_the_lower_layer_cache(tiny_models, tmp_path):
    base = json.load(open(tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path))))
    base["model"]["text_field_embedder"]["token_embedders"]["tokens"].update(cache=True, save_backbone=False)
    base["dataset_reader"]["cache_keys"] = True
    swapped = with_method(base, "loreft", {"rank": 2})
    tokens = swapped["model"]["text_field_embedder"]["token_embedders"]["tokens"]
    assert tokens == {"type": "reft_transformer", "model_name": tiny_models["bert"], "save_backbone": False,
                      "method": {"type": "loreft", "layers": "all", "first_positions": 1, "last_positions": 0,
                                 "rank": 2, "dropout": 0.05}}
    assert "cache_keys" not in swapped["dataset_reader"] and swapped["trainer"]["optimizer"]["lr"] == 6e-4


def test_the_benchmark_trains_the_edits_and_the_head(tmp_path):
    settings = benchmark.Settings(family="gpt2", size="tiny", batch_size=2, length=8, steps=1, warmup=1,
                                  methods=("loreft",))
    model, step = benchmark.build_method("loreft", settings, benchmark.build_backbone(settings, str(tmp_path / "b")))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    step()
    assert before and all(n.startswith(("loreft_edits.", "score.")) for n in before)
    assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)
