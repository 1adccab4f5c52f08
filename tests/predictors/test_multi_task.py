"""
Several archives of one backbone predicted together (`MultiTaskPredictor`,
`allennlp lpt-predict-multi`): each task's output equals its own `lpt_classifier` predictor's,
the grouping follows the inputs, one backbone is held in memory, mismatched backbones are
refused, and bad input is named by line with nothing written.
"""
import json
import os
import subprocess
import sys

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common.checks import ConfigurationError
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor

from allennlp_lpt.commands.slim_archive import slim_archive
from allennlp_lpt.predictors import MultiTaskPredictor
from config_swap import CONFIGS, ROOT, tiny_config

QUICKSTART = os.path.join(CONFIGS, "quickstart.jsonnet")
VERBALIZER = os.path.join(CONFIGS, "roberta-large", "sst-2_full-data.jsonnet")
SCORING = os.path.join(CONFIGS, "gpt2-large", "sst-2_full-data.jsonnet")
INPUTS = [{"sentence": s} for s in (
    "a warm and funny film .", "the plot was boring", "great acting , bad story and a very long plot",
    "it is", "not good", "fun",
)]


def _set_everywhere(node, key, value):
    if isinstance(node, dict):
        for name in node:
            if name == key:
                node[name] = value
            else:
                _set_everywhere(node[name], key, value)
    elif isinstance(node, list):
        for item in node:
            _set_everywhere(item, key, value)


def _train(tmp, name, config_path, tiny_models, family, *, prompt_layer=None, seed=1):
    folder = tmp / name
    folder.mkdir()
    path = tiny_config(config_path, tiny_models, str(folder), family=family, epochs=1)
    config = json.load(open(path))
    if prompt_layer is not None:
        _set_everywhere(config["model"], "prompt_layer", prompt_layer)
    for key in ("random_seed", "numpy_seed", "pytorch_seed"):
        config[key] = seed
    json.dump(config, open(path, "w"))
    train_model_from_file(path, str(folder / "run"))
    return str(folder / "run" / "model.tar.gz")


@pytest.fixture(scope="module")
def archives(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi")
    made = {
        "a": _train(tmp, "a", QUICKSTART, tiny_models, "roberta", prompt_layer=2, seed=1),
        "b": _train(tmp, "b", QUICKSTART, tiny_models, "roberta", prompt_layer=2, seed=2),
        "c": _train(tmp, "c", QUICKSTART, tiny_models, "roberta", prompt_layer=1, seed=3),
        # Another template: other token ids, so another group.
        "verbalizer": _train(tmp, "verbalizer", VERBALIZER, tiny_models, "roberta", prompt_layer=3),
        "bert": _train(tmp, "bert", QUICKSTART, tiny_models, "bert"),
        "scoring": _train(tmp, "scoring", SCORING, tiny_models, "gpt2"),
        "gpt2": _train(tmp, "gpt2", QUICKSTART, tiny_models, "gpt2"),
    }
    made["slim"] = str(tmp / "slim.tar.gz")
    slim_archive(made["c"], made["slim"])
    return made


def _own_outputs(archive, batch_size):
    predictor = Predictor.from_archive(load_archive(archive), "lpt_classifier")
    outputs = []
    for start in range(0, len(INPUTS), batch_size):
        outputs += predictor.predict_batch_json(INPUTS[start:start + batch_size])
    return outputs


def _assert_same(ours, theirs):
    assert set(ours) == set(theirs)
    for key in ours:
        if isinstance(ours[key], (list, float)) and key not in ("tokens", "label", "label_word", "labels"):
            torch.testing.assert_close(torch.tensor(ours[key], dtype=torch.float64),
                                       torch.tensor(theirs[key], dtype=torch.float64), atol=1e-6, rtol=0)
        elif isinstance(ours[key], dict) and key != "input":  # class_probabilities
            assert set(ours[key]) == set(theirs[key])
            for name in ours[key]:
                assert abs(ours[key][name] - theirs[key][name]) <= 1e-6
        else:
            assert ours[key] == theirs[key], key


@pytest.mark.parametrize("batch_size", [1, 4])
def test_outputs_equal_each_archive_own_predictor(archives, batch_size):
    names = ["a", "b", "c", "verbalizer", "slim"]
    predictor = MultiTaskPredictor.from_archives([archives[n] for n in names], names=names)
    # a and b share layers 1..2, c (prompt layer 1) and the slim copy of c join them: layer 1;
    # the verbalizer's template gives other ids.
    described = predictor.describe_groups()
    assert [sorted(t.name for t in g.tasks) for g in predictor.groups] == [["a", "b", "c", "slim"], ["verbalizer"]]
    assert [g.shared_layer for g in predictor.groups] == [1, 3]
    assert "layers 1..1 shared" in described and "layers 1..3 shared" in described
    outputs = []
    for start in range(0, len(INPUTS), batch_size):
        outputs += predictor.predict_batch_json(INPUTS[start:start + batch_size])
    assert len(outputs) == len(INPUTS) and all(list(o) == names for o in outputs)
    for name in names:
        for ours, theirs in zip([o[name] for o in outputs], _own_outputs(archives[name], batch_size)):
            _assert_same(ours, theirs)


def test_one_backbone_in_memory_for_many_archives(archives):
    def stored_bytes(models):
        seen = {}
        for model in models:
            for tensor in list(model.parameters()) + list(model.buffers()):
                seen[tensor.data_ptr()] = tensor.numel() * tensor.element_size()
        return sum(seen.values())

    one = MultiTaskPredictor.from_archives([archives["a"]], names=["a"])
    names = ["a", "b", "c", "verbalizer"]
    many = MultiTaskPredictor.from_archives([archives[n] for n in names], names=names)
    single = stored_bytes([task.model for task in one.tasks])
    together = stored_bytes([task.model for task in many.tasks])
    trainable = sum(p.numel() * p.element_size() for task in many.tasks
                    for p in task.model.parameters() if p.requires_grad)
    # The frozen weights once; beyond them only each task's own generator and head (and the
    # verbalizer's LM head, which shares the embeddings it is tied to).
    assert together <= single + trainable + 1e5, (single, together, trainable)


def test_generative_scoring_runs_its_own_lower_pass(archives):
    predictor = MultiTaskPredictor.from_archives([archives["gpt2"], archives["scoring"]], names=["pooled", "scoring"])
    assert [g.shared_layer for g in predictor.groups] == [2, None]
    assert "generative scoring" in predictor.describe_groups()
    outputs = predictor.predict_batch_json(INPUTS[:3])
    for ours, theirs in zip([o["scoring"] for o in outputs], _own_outputs(archives["scoring"], 3)[:3]):
        _assert_same(ours, theirs)


def test_archives_of_different_backbones_are_refused_naming_both(archives):
    with pytest.raises(ConfigurationError) as error:
        MultiTaskPredictor.from_archives([archives["a"], archives["bert"]])
    assert archives["a"] in str(error.value) and archives["bert"] in str(error.value)
    assert "model_name" in str(error.value)


def test_default_names_and_colliding_names(archives, tmp_path):
    predictor = MultiTaskPredictor.from_archives([archives["a"], archives["slim"]])
    assert [t.name for t in predictor.tasks] == ["model", "slim"]  # file names, no extension
    # AllenNLP names every archive model.tar.gz: then the folders' names.
    for task in ("sst2", "trec"):
        (tmp_path / task).mkdir()
        os.symlink(archives["a"], tmp_path / task / "model.tar.gz")
    predictor = MultiTaskPredictor.from_archives([str(tmp_path / t / "model.tar.gz") for t in ("sst2", "trec")])
    assert [t.name for t in predictor.tasks] == ["sst2", "trec"]
    predictor = MultiTaskPredictor.from_archives([archives["a"], archives["b"]])
    assert [t.name for t in predictor.tasks] == ["a/run", "b/run"]  # as much path as tells them apart
    with pytest.raises(ConfigurationError, match="--names: give 2 distinct names"):
        MultiTaskPredictor.from_archives([archives["a"], archives["b"]], names=["x", "x"])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "allennlp", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_the_command_writes_what_allennlp_predict_writes(archives, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(x) + "\n" for x in INPUTS[:4]) + "\n")
    out = tmp_path / "multi.jsonl"
    done = _cli("lpt-predict-multi", archives["a"], archives["verbalizer"], str(source),
                "--output-file", str(out), "--batch-size", "2", "--names", "sentiment", "verbalizer")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 input group(s)" in done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    own = tmp_path / "own.jsonl"
    done = _cli("predict", archives["a"], str(source), "--predictor", "lpt_classifier",
                "--output-file", str(own), "--batch-size", "2", "--silent")
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = [json.loads(line) for line in own.read_text().splitlines()]
    assert len(lines) == len(theirs) == 4
    for ours, expected in zip(lines, theirs):
        assert list(ours) == ["sentiment", "verbalizer"]
        _assert_same(ours["sentiment"], expected)


def test_a_bad_line_is_named_and_nothing_is_written(archives, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"sentence": "good"}\n{"sentence": "  "}\n')
    out = tmp_path / "multi.jsonl"
    done = _cli("lpt-predict-multi", archives["a"], archives["b"], str(source), "--output-file", str(out))
    assert done.returncode != 0
    assert f"{source}:2: the text for 'sentence' is empty" in done.stderr.strip().splitlines()[-1]
    assert not out.exists()
