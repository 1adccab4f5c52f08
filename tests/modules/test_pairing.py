"""The embedder and the encoder of a model pair up without any process-global state and without
reading the call stack: wrong pairings are errors, when the model is built, that name both config
keys, and models built in one process do not meet."""
import ast
import pathlib
from typing import Dict, Optional

import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.models import Model
from allennlp.modules import Seq2VecEncoder, TokenEmbedder
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.models.basic_classifier import BasicClassifier

from test_late_prompt_components import TEXTS, tokenize


def vocab() -> Vocabulary:
    vocabulary = Vocabulary()
    vocabulary.add_tokens_to_namespace(["0", "1"], "labels")
    return vocabulary


def classifier(embedder: Dict, encoder: Dict) -> Model:
    return Model.from_params(
        vocab=vocab(),
        params=Params({
            "type": "basic_classifier",
            "text_field_embedder": {"token_embedders": {"tokens": embedder}},
            "seq2vec_encoder": encoder,
        }),
    )


def batch(model_dir: str, family: str = "roberta"):
    ids, mask = tokenize(model_dir, family, TEXTS)
    tokens = {"tokens": {"token_ids": ids, "mask": mask, "type_ids": torch.zeros_like(ids)}}
    return {"tokens": tokens, "label": torch.tensor([1, 0])}


def lpt_embedder(model_dir: str, prompt_layer: int = 2) -> Dict:
    return {"type": "late_prompt_transformer", "model_name": model_dir, "prompt_layer": prompt_layer}


def lpt_encoder(model_dir: str, prompt_layer: int = 2, type_: str = "late_prompt_roberta") -> Dict:
    return {"type": type_, "model_name": model_dir, "prompt_layer": prompt_layer, "prompt_length": 3}


def test_a_final_state_embedder_before_a_late_prompt_encoder_is_an_error_when_built(tiny_models):
    # Before: the encoder ran layers k+1..L a second time over the final states, silently.
    with pytest.raises(ConfigurationError) as error:
        classifier(
            {"type": "pretrained_transformer", "model_name": tiny_models["roberta"]},
            lpt_encoder(tiny_models["roberta"]),
        )
    message = str(error.value)
    assert "model.seq2vec_encoder (late_prompt_roberta)" in message
    assert "model.text_field_embedder.token_embedders.tokens (pretrained_transformer)" in message


def test_a_late_prompt_embedder_before_another_encoder_is_an_error_when_built(tiny_models):
    with pytest.raises(ConfigurationError) as error:
        classifier(lpt_embedder(tiny_models["roberta"]), {"type": "boe", "embedding_dim": 32})
    message = str(error.value)
    assert "model.text_field_embedder.token_embedders.tokens (late_prompt_transformer)" in message
    assert "model.seq2vec_encoder (bag_of_embeddings / boe)" in message


@pytest.mark.parametrize(
    "embedder_changes,encoder_model,problem",
    [
        ({"prompt_layer": 1}, "roberta", "prompt_layer"),
        ({}, "bert", "model_name"),
        ({"backbone_dtype": "bfloat16"}, "roberta", "backbone_dtype"),
    ],
)
def test_halves_of_different_splits_are_an_error_naming_both_keys_when_built(
    tiny_models, embedder_changes, encoder_model, problem
):
    with pytest.raises(ConfigurationError, match=(
        rf"model.text_field_embedder.token_embedders.tokens and model.seq2vec_encoder disagree: "
        rf"{problem}"
    )):
        classifier(
            {**lpt_embedder(tiny_models["roberta"]), **embedder_changes},
            lpt_encoder(tiny_models[encoder_model]),
        )


def test_a_mispaired_model_built_in_python_is_an_error_too(tiny_models):
    """Built without a config (as `_build` below does), the model is checked all the same."""
    roberta = tiny_models["roberta"]
    embedder = TokenEmbedder.from_params(Params(lpt_embedder(roberta, 1)))
    encoder = Seq2VecEncoder.from_params(Params(lpt_encoder(roberta, 2)))
    with pytest.raises(ConfigurationError, match="disagree: prompt_layer"):
        BasicClassifier(vocab(), BasicTextFieldEmbedder({"tokens": embedder}), encoder)


# How library code would reach its callers' frames, and what it would read there.
FRAME_FUNCTIONS = {
    ("sys", "_getframe"), ("inspect", "currentframe"), ("inspect", "stack"), ("inspect", "getouterframes"),
}
FRAME_ATTRIBUTES = {"f_back", "f_locals", "f_globals"}


def _reads_frames(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return any((node.module, alias.name) in FRAME_FUNCTIONS for alias in node.names)
    if not isinstance(node, ast.Attribute):
        return False
    module = node.value.id if isinstance(node.value, ast.Name) else None
    return (module, node.attr) in FRAME_FUNCTIONS or node.attr in FRAME_ATTRIBUTES


def test_no_library_module_reads_the_call_stack():
    package = pathlib.Path(__file__).resolve().parents[2] / "allennlp_lpt"
    found = [
        f"{path.relative_to(package.parent)}:{node.lineno}"
        for path in sorted(package.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if _reads_frames(node)
    ]
    assert not found, found


def test_an_earlier_unpaired_embedder_does_not_break_the_next_model(tiny_models):
    # Before: the embedder of a model never paired stayed "unclaimed" in a module-level slot
    # and made the next, correct model fail with a false "disagree" error.
    leftover = TokenEmbedder.from_params(Params(lpt_embedder(tiny_models["roberta"], 1)))  # noqa: F841
    model = classifier(lpt_embedder(tiny_models["roberta"]), lpt_encoder(tiny_models["roberta"]))
    output = model(**batch(tiny_models["roberta"]))
    assert torch.isfinite(output["loss"])


def _build(model_dir: str, prompt_layer: int, seed: int, parts: Optional[Dict] = None) -> Model:
    """A basic_classifier whose random initialisations depend only on `seed`, so that it can be
    built alone or interleaved with another and come out the same."""
    parts = parts if parts is not None else {}
    embedder = parts.get("embedder") or TokenEmbedder.from_params(
        Params(lpt_embedder(model_dir, prompt_layer))
    )
    if "encoder" not in parts:
        torch.manual_seed(seed)
        parts["encoder"] = Seq2VecEncoder.from_params(Params(lpt_encoder(model_dir, prompt_layer)))
    torch.manual_seed(seed + 1)
    return BasicClassifier(
        vocab(), BasicTextFieldEmbedder({"tokens": embedder}), parts["encoder"]
    )


def _train_step(model: Model, inputs, seed: int) -> None:
    model.train()
    torch.manual_seed(seed)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    optimizer.zero_grad()
    model(**inputs)["loss"].backward()
    optimizer.step()


def _predict(model: Model, inputs) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(tokens=inputs["tokens"])["logits"]


def test_two_models_built_interleaved_train_and_predict_as_each_alone(tiny_models):
    """Two different splits of the same backbone (sharing its weights), their components
    built interleaved, trained and evaluated in turns: each ends exactly where it ends alone."""
    roberta = tiny_models["roberta"]
    inputs = batch(roberta)
    expected = {}
    for name, layer, seed in (("a", 2, 10), ("b", 1, 20)):
        model = _build(roberta, layer, seed)
        for step in range(3):
            _train_step(model, inputs, seed + step)
        expected[name] = _predict(model, inputs)
        del model

    # Interleaved: both embedders, then both encoders, then the models.
    embedder_a = TokenEmbedder.from_params(Params(lpt_embedder(roberta, 2)))
    embedder_b = TokenEmbedder.from_params(Params(lpt_embedder(roberta, 1)))
    torch.manual_seed(10)
    encoder_a = Seq2VecEncoder.from_params(Params(lpt_encoder(roberta, 2)))
    torch.manual_seed(20)
    encoder_b = Seq2VecEncoder.from_params(Params(lpt_encoder(roberta, 1)))
    model_a = _build(roberta, 2, 10, {"embedder": embedder_a, "encoder": encoder_a})
    model_b = _build(roberta, 1, 20, {"embedder": embedder_b, "encoder": encoder_b})
    for step in range(3):
        _train_step(model_a, inputs, 10 + step)
        _predict(model_b, inputs)  # b in eval mode between a's training steps
        _train_step(model_b, inputs, 20 + step)
        _predict(model_a, inputs)
    torch.testing.assert_close(_predict(model_a, inputs), expected["a"], atol=0, rtol=0)
    torch.testing.assert_close(_predict(model_b, inputs), expected["b"], atol=0, rtol=0)
