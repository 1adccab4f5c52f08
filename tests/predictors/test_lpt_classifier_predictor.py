"""Round trips through archives: the predictor for single sentences and pairs, the MRPC metric."""
import os

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor
from sklearn.metrics import accuracy_score, f1_score

from config_swap import CONFIGS, task_fixture, tiny_config


@pytest.fixture(scope="module")
def archives(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("archives")
    made = {}
    for name in ("roberta-large/sst-2_few-shot", "roberta-large/mrpc_full-data", "gpt2-large/rte_full-data"):
        config = tiny_config(os.path.join(CONFIGS, name + ".jsonnet"), tiny_models, str(root), epochs=1)
        out = root / name.replace("/", "_")
        train_model_from_file(config, str(out))
        made[name] = str(out / "model.tar.gz")
    return made


def test_single_sentence_prediction(archives):
    predictor = Predictor.from_archive(load_archive(archives["roberta-large/sst-2_few-shot"]))
    assert type(predictor).__name__ == "LatePromptClassifierPredictor"  # the model's default
    output = predictor.predict_json({"sentence": "a warm and funny film ."})
    assert output["label"] in {"0", "1"}
    assert output["label_word"] == {"0": "terrible", "1": "great"}[output["label"]]
    probabilities = output["class_probabilities"]
    assert set(probabilities) == {"0", "1"} and abs(sum(probabilities.values()) - 1) < 1e-5
    assert max(probabilities, key=probabilities.get) == output["label"]


@pytest.mark.parametrize("archive", ["roberta-large/mrpc_full-data", "gpt2-large/rte_full-data"])
def test_pair_prediction(archives, archive):
    predictor = Predictor.from_archive(load_archive(archives[archive]))
    output = predictor.predict_json({"sentence1": "the film was great .", "sentence2": "it was good ."})
    assert output["label_word"] in {"Yes", "No"}
    assert output["label"] in output["class_probabilities"]
    with pytest.raises(ValueError, match="sentence1"):
        predictor.predict_json({"text": "no such key"})


def test_mrpc_metric_is_mean_of_accuracy_and_f1(archives):
    archive = load_archive(archives["roberta-large/mrpc_full-data"])
    model, reader = archive.model, archive.dataset_reader
    model.eval()
    instances = list(reader.read(task_fixture("mrpc")))
    outputs = model.forward_on_instances(instances)
    metrics = model.get_metrics(reset=True)
    gold = [instance["label"].label for instance in instances]
    predicted = [output["label"] for output in outputs]
    accuracy = accuracy_score(gold, predicted)
    f1 = f1_score(gold, predicted, pos_label="1", zero_division=0)
    assert metrics["accuracy"] == pytest.approx(accuracy)
    assert metrics["f1"] == pytest.approx(f1)
    assert metrics["acc_and_f1"] == pytest.approx((accuracy + f1) / 2)


LEGACY = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "legacy_archives")


def _predict(archive, lines, tmp_path, *extra):
    import subprocess
    import sys

    from config_swap import ROOT

    source = tmp_path / "input.jsonl"
    source.write_text(lines)
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "allennlp", "predict", os.path.join(LEGACY, archive), str(source),
         "--output-file", str(out), "--silent", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    return done, source, out


@pytest.mark.parametrize("lines,message", [
    ('{"sentence": "good"}\n\n{"sentence": "fine"\n', r"input.jsonl:3: the line is not JSON"),
    ('{"sentence": "good"}\n{"sentence": "  "}\n', r"input.jsonl:2: the text for 'sentence' is empty"),
    ('{"sentence": "good"}\n{"text": "good"}\n', r"input.jsonl:2: expected \{'sentence': ...\}"),
])
def test_a_bad_input_line_is_named_last_and_nothing_is_predicted(tmp_path, lines, message):
    import re

    done, source, out = _predict("verbalizer-roberta.tar.gz", lines, tmp_path)
    assert done.returncode != 0
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert re.search(message, last), done.stderr[-2000:]
    assert not out.exists() or out.read_text() == ""  # no partial output before the error


def test_basic_classifier_archives_get_labelled_probabilities(tmp_path):
    import json

    done, _, out = _predict("basic-roberta.tar.gz", '{"sentence": "good"}\n', tmp_path,
                            "--predictor", "lpt_classifier")
    assert done.returncode == 0, done.stderr[-2000:]
    output = json.loads(out.read_text().splitlines()[0])
    probabilities = output["class_probabilities"]
    assert set(probabilities) == {"0", "1"}
    assert max(probabilities, key=probabilities.get) == output["label"]
