"""One backbone per process: the components of a model, and models built in one process, read
one copy of the pretrained weights, and no model can change the weights another one reads."""
import json
import os
import subprocess
import sys

import pytest
import torch
from allennlp.common import Params
from allennlp.data import Vocabulary
from allennlp.models import Model
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

from allennlp_lpt.core.backbone import get_backbone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENCODERS = {"roberta": "late_prompt_roberta", "gpt2": "late_prompt_gpt2", "llama": "late_prompt_causal",
            "qwen2": "late_prompt_causal"}


def classifier(model_dir: str, family: str, prompt_layer: int = 2) -> Model:
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["0", "1"], "labels")
    return Model.from_params(vocab=vocab, params=Params({
        "type": "late_prompt_classifier",
        "text_field_embedder": {"token_embedders": {"tokens": {
            "type": "late_prompt_transformer", "model_name": model_dir, "prompt_layer": prompt_layer}}},
        "encoder": {"type": ENCODERS[family], "model_name": model_dir, "prompt_layer": prompt_layer},
        "label_words": {"0": "terrible", "1": "great"},
    }))


def backbone_parameters(model: Model):
    return [(name, p) for name, p in model.named_parameters(remove_duplicate=False) if "generator" not in name]


def storages(parameters) -> set:
    return {p.untyped_storage().data_ptr() for _, p in parameters}


@pytest.mark.parametrize("family", sorted(ENCODERS))
def test_a_classifier_holds_one_storage_per_backbone_parameter(tiny_models, family):
    model = classifier(tiny_models[family], family)
    hf_class = AutoModelForMaskedLM if family == "roberta" else AutoModelForCausalLM
    hf = hf_class.from_pretrained(tiny_models[family])
    # HF's own count of distinct parameters (tied input and output embeddings once).
    assert len(storages(backbone_parameters(model))) == len(list(hf.parameters()))
    # ... and they are the process's shared backbone.
    shared = get_backbone(tiny_models[family]).model
    assert storages(backbone_parameters(model)) == {p.untyped_storage().data_ptr() for p in shared.parameters()}


def test_tied_embeddings_are_one_tensor_across_components(tiny_models):
    model = classifier(tiny_models["roberta"], "roberta")
    embedder = model._text_field_embedder.token_embedder_tokens
    word_embeddings = embedder.stack.embeddings.word_embeddings.weight
    assert model._lm_head.head.decoder.weight is word_embeddings


def test_two_models_share_the_weights_and_not_the_modules(tiny_models):
    first = classifier(tiny_models["roberta"], "roberta", prompt_layer=2)
    second = classifier(tiny_models["roberta"], "roberta", prompt_layer=1)
    assert storages(backbone_parameters(first)) == storages(backbone_parameters(second))
    first_layer = first._encoder.upper.layers[0]
    assert first_layer is not second._encoder.upper.layers[1]  # the same HF layer, own modules
    first.eval()
    second.train()
    assert not first_layer.training and second._encoder.upper.layers[1].training


def test_converting_one_model_leaves_the_others_weights_alone(tiny_models):
    first = classifier(tiny_models["roberta"], "roberta")
    second = classifier(tiny_models["roberta"], "roberta")
    before = storages(backbone_parameters(second))
    first.double()
    assert all(p.dtype == torch.float64 for _, p in backbone_parameters(first))
    assert all(p.dtype == torch.float32 for _, p in backbone_parameters(second))
    assert storages(backbone_parameters(second)) == before
    # Tied weights are converted once, and stay tied.
    embedder = first._text_field_embedder.token_embedder_tokens
    assert first._lm_head.head.decoder.weight is embedder.stack.embeddings.word_embeddings.weight
    # A later model of the same backbone still gets the float32 weights.
    third = classifier(tiny_models["roberta"], "roberta")
    assert storages(backbone_parameters(third)) == before


def test_a_converted_model_lets_the_shared_copy_go(tmp_path):
    """After .cuda() (here .double()) a model reads its own copies: the shared CPU weights are
    freed once no other model reads them."""
    import gc
    import weakref

    from tiny_models import build_roberta

    model_dir = build_roberta(str(tmp_path / "roberta"))
    model = classifier(model_dir, "roberta")
    shared = weakref.ref(get_backbone(model_dir))
    gc.collect()
    assert shared() is not None
    model.double()
    gc.collect()
    assert shared() is None
    assert all(p.dtype == torch.float64 for _, p in backbone_parameters(model))


def test_loading_different_backbone_weights_copies_them_for_that_model_only(tiny_models):
    first = classifier(tiny_models["roberta"], "roberta")
    second = classifier(tiny_models["roberta"], "roberta")
    state = {key: value.clone() for key, value in first.state_dict().items()}
    key = "_encoder.upper.layers.0.attention.self.query.weight"
    state[key] += 1.0
    first.load_state_dict(state)
    torch.testing.assert_close(first.state_dict()[key], state[key])
    assert not torch.equal(second.state_dict()[key], state[key])
    # Equal values load without copying anything.
    unchanged = storages(backbone_parameters(second))
    second.load_state_dict({k: v.clone() for k, v in second.state_dict().items()})
    assert storages(backbone_parameters(second)) == unchanged


def test_building_needs_about_one_copy_of_the_weights():
    """Peak resident memory while building a late_prompt_classifier (and reading every weight
    once), over one copy of the weights: at most 1.3 (before: three loads, about 3)."""
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "construction_memory.py"), "--shape", "small"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["peak_ratio_after_reading"] <= 1.3, measured


def test_making_the_shared_weights_trainable_is_refused_for_every_model(tiny_models):
    """`requires_grad_(True)` on one model (or `requires_grad = True` on a weight) would make
    every model of the backbone train it: refused, saying what to use instead, and the other
    model is left frozen."""
    first = classifier(tiny_models["roberta"], "roberta", prompt_layer=2)
    second = classifier(tiny_models["roberta"], "roberta", prompt_layer=1)
    with pytest.raises(RuntimeError, match=r"cannot be made trainable.*pretrained_transformer .*train_parameters: true"):
        first.requires_grad_(True)
    weight = first._encoder.upper.layers[0].attention.self.query.weight
    with pytest.raises(RuntimeError, match="cannot be made trainable"):
        weight.requires_grad = True
    assert not any(p.requires_grad for _, p in backbone_parameters(second))
    assert not any(p.requires_grad for _, p in backbone_parameters(first))
    first.requires_grad_(False)  # freezing is always allowed
    # What trains still trains, and a deep copy owns its weights (they may then be unfrozen).
    assert all(p.requires_grad for name, p in second.named_parameters() if "generator" in name)
    import copy

    own = copy.deepcopy(second)
    own.requires_grad_(True)
    assert all(p.requires_grad for p in own.parameters())
    assert not any(p.requires_grad for _, p in backbone_parameters(second))


@pytest.mark.parametrize("family", ["roberta", "gpt2"])
def test_an_initializer_matching_the_backbone_is_refused_before_it_writes(tiny_models, family):
    """AllenNLP's `initializer` writes in place: a regex that reaches the shared weights is a
    ConfigurationError naming it, and no model's weights change; one that matches only what
    trains works as before."""
    model_dir = tiny_models[family]
    other = classifier(model_dir, family)
    before = {name: p.detach().clone() for name, p in backbone_parameters(other)}
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["0", "1"], "labels")
    encoder = {"roberta": "late_prompt_roberta", "gpt2": "late_prompt_gpt2"}[family]

    def build(regex):
        return Model.from_params(vocab=vocab, params=Params({
            "type": "basic_classifier",
            "text_field_embedder": {"token_embedders": {"tokens": {
                "type": "late_prompt_transformer", "model_name": model_dir, "prompt_layer": 2}}},
            "seq2vec_encoder": {"type": encoder, "model_name": model_dir, "prompt_layer": 2},
            "initializer": {"regexes": [[regex, {"type": "normal", "std": 0.5}]]},
        }))

    with pytest.raises(Exception, match=r"model.initializer: the regex '\.\*weight' matches .* shares"):
        build(".*weight")
    built = build("_classification_layer.*")
    assert built._classification_layer.weight.std() > 0.3  # the head was initialized
    for name, p in backbone_parameters(other):
        assert torch.equal(p, before[name]), name
