"""Every method lpt-compare swaps in trains through `allennlp train`, archives, and loads to the
same predictions; slim archives hold only what trained."""
import copy
import json
import os
import tarfile

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common import Params
from allennlp.data import DatasetReader
from allennlp.models.archival import load_archive

from allennlp_lpt.experiments.methods import with_method
from config_swap import CONFIGS, FIXTURES, tiny_config

METHODS = ["lora", "ia3", "prompt_tuning", "prefix_tuning", "bitfit", "full", "loreft"]


def method_config(tiny_models, tmp_path, method, base="quickstart.jsonnet", family="roberta", **overrides):
    path = tiny_config(os.path.join(CONFIGS, base), tiny_models, str(tmp_path), family=family, epochs=1)
    config = with_method(json.load(open(path)), method)
    for key, value in overrides.items():
        config["model"]["text_field_embedder"]["token_embedders"]["tokens"][key] = value
    out = tmp_path / f"{method}.json"
    out.write_text(json.dumps(config))
    return str(out), config


def predictions(model, config, path):
    reader = DatasetReader.from_params(Params(copy.deepcopy(config["dataset_reader"])))
    instances = list(reader.read(path))[:6]
    model.eval()
    return torch.stack([torch.as_tensor(output["probs"]) for output in model.forward_on_instances(instances)])


def archived_weights(serialization_dir):
    with tarfile.open(os.path.join(serialization_dir, "model.tar.gz")) as archive:
        archive.extract("weights.th", serialization_dir, filter="data")
    return torch.load(os.path.join(serialization_dir, "weights.th"), weights_only=True)


@pytest.mark.parametrize("method", METHODS)
def test_a_method_round_trips_through_its_archive(tiny_models, tmp_path, method):
    path, config = method_config(tiny_models, tmp_path, method)
    trained = train_model_from_file(path, str(tmp_path / "run"))
    loaded = load_archive(str(tmp_path / "run" / "model.tar.gz")).model
    data = os.path.join(FIXTURES, "sst2_tiny.tsv")
    assert torch.equal(predictions(trained, config, data), predictions(loaded, config, data))
    trainable = {name for name, p in trained.named_parameters() if p.requires_grad}
    if method == "bitfit":  # biases and the head, nothing else
        assert trainable and all(name.endswith(".bias") or name.startswith("_classification_layer") for name in trainable)
        assert any(name.startswith("_text_field_embedder") for name in trainable)
    if method == "loreft":  # the edits' R, W and b, and the head
        assert trainable and all(".edits." in name or name.startswith("_classification_layer") for name in trainable)
    counts = json.load(open(tmp_path / "run" / "parameter_counts.json"))
    assert counts["trainable"] == sum(p.numel() for n, p in trained.named_parameters() if n in trainable)


@pytest.mark.parametrize("method, marker", [("lora", "lora_"), ("loreft", ".edits.")])
def test_a_slim_archive_holds_the_adapter_and_the_head_and_predicts_alike(tiny_models, tmp_path, method, marker):
    path, config = method_config(tiny_models, tmp_path, method, save_backbone=False)
    trained = train_model_from_file(path, str(tmp_path / "run"))
    weights = archived_weights(str(tmp_path / "run"))
    assert weights and all(marker in key or key.startswith("_classification_layer") for key in weights)
    loaded = load_archive(str(tmp_path / "run" / "model.tar.gz")).model
    data = os.path.join(FIXTURES, "sst2_tiny.tsv")
    assert torch.equal(predictions(trained, config, data), predictions(loaded, config, data))


@pytest.mark.parametrize("method, model, family", [("lora", "roberta-large", "roberta"), ("loreft", "gpt2-large", "gpt2")])
def test_the_verbalizer_over_a_method_round_trips(tiny_models, tmp_path, method, model, family):
    """Masked-LM scoring over LoRA, generative scoring (a causal model) over LoReFT."""
    path, config = method_config(tiny_models, tmp_path, method, base=f"{model}/sst-2_few-shot.jsonnet",
                                 family=family, save_backbone=False)
    assert "encoder" not in config["model"] and config["model"]["type"] == "late_prompt_classifier"
    trained = train_model_from_file(path, str(tmp_path / "run"))
    loaded = load_archive(str(tmp_path / "run" / "model.tar.gz")).model
    data = config["validation_data_path"]
    assert torch.equal(predictions(trained, config, data), predictions(loaded, config, data))
