"""Archives written by earlier versions of the package load and predict exactly as they did.

`tests/fixtures/legacy_archives/` holds one archive of each kind (basic_classifier over each
family, the verbalizer, GPT-2 scoring, a lightweight archive) written by the code of commit
fba19a7, the tiny models they were trained on, and the predictions they gave then.
"""
import json
import os
import tarfile
from typing import Any, Dict

import pytest
import torch
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor

LEGACY = os.path.join(os.path.dirname(__file__), "fixtures", "legacy_archives")
with open(os.path.join(LEGACY, "expected.json")) as _handle:
    EXPECTED = json.load(_handle)


def model_name_overrides(archive: str) -> Dict[str, Any]:
    """Every `model_name` in the archive's config, pointed at the fixture models by absolute
    path (the archives name them relative to the repository root)."""
    with tarfile.open(archive) as tar:
        config = json.load(tar.extractfile("config.json"))  # type: ignore[arg-type]
    overrides: Dict[str, Any] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                dotted = f"{path}.{key}" if path else key
                if key == "model_name" and isinstance(value, str):
                    overrides[dotted] = os.path.join(LEGACY, "models", os.path.basename(value))
                else:
                    walk(value, dotted)

    walk(config, "")
    return overrides


@pytest.mark.parametrize("name", sorted(EXPECTED["predictions"]))
def test_legacy_archive_predicts_as_when_it_was_written(name):
    archive_file = os.path.join(LEGACY, f"{name}.tar.gz")
    overrides = model_name_overrides(archive_file)
    assert overrides, "the archive names no model"
    predictor = Predictor.from_archive(load_archive(archive_file, overrides=overrides))
    outputs = predictor.predict_batch_json([{"sentence": s} for s in EXPECTED["sentences"]])
    for output, expected in zip(outputs, EXPECTED["predictions"][name]):
        assert output["label"] == expected["label"]
        torch.testing.assert_close(
            torch.tensor(output["logits"]), torch.tensor(expected["logits"]), atol=1e-6, rtol=1e-6
        )
        torch.testing.assert_close(
            torch.tensor(output["probs"]), torch.tensor(expected["probs"]), atol=1e-6, rtol=1e-6
        )


@pytest.mark.parametrize("name", sorted(EXPECTED["predictions"]))
def test_models_today_have_the_state_dict_keys_of_those_archives(name):
    """What a model writes into an archive keeps the layout of earlier versions: no key added,
    none renamed (a component held twice would add a second set)."""
    archive_file = os.path.join(LEGACY, f"{name}.tar.gz")
    with tarfile.open(archive_file) as tar:
        saved = torch.load(tar.extractfile("weights.th"), map_location="cpu", weights_only=True)  # type: ignore[arg-type]
    model = load_archive(archive_file, overrides=model_name_overrides(archive_file)).model
    assert set(model.state_dict()) == set(saved)
