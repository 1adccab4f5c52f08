"""Lightweight archives: only trained parameters; loading rebuilds the backbone from model_name."""
import json
import os
import tarfile

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor

from allennlp_lpt.commands.slim_archive import slim_archive
from config_swap import CONFIGS, tiny_config

SENTENCES = [{"sentence": "a warm and funny film ."}, {"sentence": "the plot was terrible ."}]


def _weights(archive):
    with tarfile.open(archive) as handle:
        return torch.load(handle.extractfile("weights.th"), weights_only=True)


@pytest.mark.parametrize("config,family", [
    ("roberta-large/sst-2_full-data.jsonnet", "roberta"),
    ("gpt2-large/sst-2_full-data.jsonnet", "gpt2"),
    ("quickstart.jsonnet", "bert"),
    ("quickstart_causal.jsonnet", "llama"),
])
def test_slim_archive_predicts_like_the_full_one(tiny_models, tmp_path, config, family):
    path = tiny_config(os.path.join(CONFIGS, config), tiny_models, str(tmp_path), family=family, epochs=1)
    train_model_from_file(path, str(tmp_path / "run"))
    full = str(tmp_path / "run" / "model.tar.gz")
    slim = str(tmp_path / "slim.tar.gz")
    slim_archive(full, slim)
    assert os.path.getsize(slim) < os.path.getsize(full)
    kept = _weights(slim)
    assert kept and all("generator" in k or k.startswith("_classification_layer") for k in kept)
    expected = Predictor.from_archive(load_archive(full)).predict_batch_json(SENTENCES)
    got = Predictor.from_archive(load_archive(slim)).predict_batch_json(SENTENCES)
    for a, b in zip(expected, got):
        assert a["label"] == b["label"]
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-6)


def test_a_peft_archive_slims_to_its_adapter(tiny_models, tmp_path):
    """The components that can restore frozen weights are found from their constructors, so
    peft_transformer is slimmed like the late-prompt halves."""
    from allennlp_lpt.experiments.methods import with_method

    path = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="bert", epochs=1)
    (tmp_path / "lora.json").write_text(json.dumps(with_method(json.load(open(path)), "lora")))
    train_model_from_file(str(tmp_path / "lora.json"), str(tmp_path / "run"))
    full, slim = str(tmp_path / "run" / "model.tar.gz"), str(tmp_path / "slim.tar.gz")
    slim_archive(full, slim)
    kept = _weights(slim)
    assert kept and all("lora_" in k or k.startswith("_classification_layer") for k in kept), sorted(kept)
    expected = Predictor.from_archive(load_archive(full)).predict_batch_json(SENTENCES)
    got = Predictor.from_archive(load_archive(slim)).predict_batch_json(SENTENCES)
    for a, b in zip(expected, got):
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-6)


def test_save_backbone_false_trains_a_lightweight_archive_directly(tiny_models, tmp_path):
    path = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="roberta", epochs=1)
    config = json.load(open(path))
    config["model"]["text_field_embedder"]["token_embedders"]["tokens"]["save_backbone"] = False
    config["model"]["seq2vec_encoder"]["save_backbone"] = False
    (tmp_path / "light.json").write_text(json.dumps(config))
    model = train_model_from_file(str(tmp_path / "light.json"), str(tmp_path / "run"))
    archive = str(tmp_path / "run" / "model.tar.gz")
    assert all("generator" in k or k.startswith("_classification_layer") for k in _weights(archive))
    loaded = load_archive(archive).model
    model.eval(), loaded.eval()
    for (name, a), (_, b) in zip(sorted(model.named_parameters()), sorted(loaded.named_parameters())):
        assert torch.equal(a, b), name


def test_an_archive_whose_backbone_differs_from_model_name_is_refused(tiny_models, tmp_path):
    path = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="roberta", epochs=1)
    train_model_from_file(path, str(tmp_path / "run"))
    folder = tmp_path / "unpacked"
    with tarfile.open(tmp_path / "run" / "model.tar.gz") as handle:
        handle.extractall(folder, filter="data")
    weights = torch.load(folder / "weights.th", weights_only=True)
    key = next(k for k in weights if ".stack.layers.0." in k)
    weights[key] = weights[key] + 1.0
    torch.save(weights, folder / "weights.th")
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(tampered, "w:gz") as handle:
        for name in os.listdir(folder):
            handle.add(folder / name, arcname=name)
    from allennlp.common.checks import ConfigurationError

    with pytest.raises(ConfigurationError, match="differs from the one"):
        slim_archive(str(tampered), str(tmp_path / "slim.tar.gz"))
    assert not (tmp_path / "slim.tar.gz").exists()


def test_the_subcommand_says_what_it_wrote(tmp_path):
    import subprocess
    import sys

    from config_swap import ROOT

    legacy = os.path.join(ROOT, "tests", "fixtures", "legacy_archives")
    slim = tmp_path / "slim.tar.gz"
    done = subprocess.run(
        [sys.executable, "-m", "allennlp", "lpt-slim-archive", os.path.join(legacy, "verbalizer-roberta.tar.gz"),
         str(slim)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"wrote {slim}: " in done.stdout and "MiB (the full archive" in done.stdout
