"""Every shipped config builds (tiny model and fixture data swapped in), and the plugin works
from the command line the way a user runs it."""
import glob
import json
import os
import subprocess
import sys

import pytest
from allennlp.commands.train import TrainModel
from allennlp.common import Params
from allennlp.common.util import prepare_environment

from config_swap import CONFIGS, FIXTURES, ROOT, tiny_config

ALL_CONFIGS = sorted(glob.glob(os.path.join(CONFIGS, "**", "*.jsonnet"), recursive=True))


def test_configs_exist():
    assert os.path.join(CONFIGS, "quickstart.jsonnet") in ALL_CONFIGS


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: os.path.relpath(p, CONFIGS))
def test_every_shipped_config_builds(config, tiny_models, tmp_path):
    params = Params.from_file(tiny_config(config, tiny_models, str(tmp_path)))
    prepare_environment(params)  # pops the seeds, as `allennlp train` does
    params.pop("evaluation", None)  # `allennlp evaluate`'s, which `allennlp train` sets aside
    trainer = TrainModel.from_params(params=params, serialization_dir=str(tmp_path / "run"), local_rank=0)
    assert trainer.model is not None


def test_quickstart_names_the_offline_model_and_the_demo_data():
    config = Params.from_file(os.path.join(CONFIGS, "quickstart.jsonnet")).as_dict()
    assert config["dataset_reader"]["model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
    # The generator that did best on the data the project measured (docs/RESULTS.md).
    assert config["model"]["seq2vec_encoder"]["generator"]["type"] == "mppg"
    assert os.path.isfile(config["train_data_path"]) and os.path.isfile(config["validation_data_path"])


def _allennlp(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "allennlp", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_allennlp_train_and_predict_from_the_command_line_via_plugins_file(tiny_models, tmp_path):
    """From the repository root, `.allennlp_plugins` makes --include-package unnecessary."""
    config = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), epochs=1)
    run = tmp_path / "run"
    trained = _allennlp("train", config, "-s", str(run), cwd=ROOT)
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["validation_accuracy"] <= 1.0
    # Only what a user can act on: none of the notices AllenNLP's stack raises on every run.
    for notice in ("Failed to load image Python extension", "torch.cuda.amp.autocast(args...)` is deprecated",
                   "This implementation of AdamW is deprecated"):
        assert notice not in trained.stderr, notice
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"sentence": "a warm and funny film ."}\n{"sentence": "a dull mess ."}\n')
    predicted = _allennlp(
        "predict", str(run / "model.tar.gz"), str(lines), "--silent",
        "--output-file", str(tmp_path / "out.jsonl"), cwd=ROOT,
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    outputs = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(outputs) == 2
    for output in outputs:
        assert output["label"] in {"0", "1"}
        assert abs(sum(output["probs"]) - 1.0) < 1e-5


def test_evaluate_from_elsewhere_needs_include_package(tiny_models, tmp_path):
    config = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), epochs=1)
    run = tmp_path / "run"
    assert _allennlp("train", config, "-s", str(run), cwd=ROOT).returncode == 0
    evaluated = _allennlp(
        "evaluate", str(run / "model.tar.gz"), os.path.join(FIXTURES, "sst2_tiny.tsv"),
        "--include-package", "allennlp_lpt", cwd=str(tmp_path),
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "accuracy" in evaluated.stdout + evaluated.stderr


def test_the_configs_task_knowledge_agrees_with_the_task_registry():
    """allennlp_lpt/data/tasks.py is the one source; the libsonnet's test files and metrics,
    which jsonnet cannot import from Python, must say the same."""
    import _jsonnet

    from allennlp_lpt.data.tasks import TASKS

    snippet = "local lpt = import 'common/lpt.libsonnet'; {test_file: lpt.testFile, metric: lpt.metric}"
    mirrored = json.loads(_jsonnet.evaluate_snippet("check", snippet, jpathdir=[CONFIGS]))
    assert set(mirrored["test_file"]) == set(TASKS)
    for name, task in TASKS.items():
        assert mirrored["test_file"][name] == task.test_files[0], name
        assert mirrored["metric"].get(name, "accuracy") == task.metric, name
    for name, task in TASKS.items():  # every shipped RoBERTa config reads the registry's test file
        config = Params.from_file(os.path.join(CONFIGS, "roberta-large", f"{name}_full-data.jsonnet")).as_dict()
        assert config["test_data_path"].endswith(f"/{name}/{task.test_files[0]}")
        assert config["trainer"]["validation_metric"] == "+" + task.metric


def test_the_paper_grid_is_one_config_per_model_task_and_setting():
    """The method comes from lpt-compare's swap, not from a file per method."""
    assert len(ALL_CONFIGS) < 80
    for model in ("roberta-large", "gpt2-large"):
        assert not [d for d in os.listdir(os.path.join(CONFIGS, model)) if os.path.isdir(os.path.join(CONFIGS, model, d))]


@pytest.mark.parametrize("model", ["roberta-large", "gpt2-large"])
def test_every_method_swaps_into_a_paper_config_that_builds(model, tiny_models, tmp_path):
    """What `lpt-compare --configs-only` writes for every registered method builds and keeps the
    paper's verbalizer head, data and trainer."""
    from allennlp_lpt.experiments.methods import with_method
    from allennlp_lpt.modules.tuning_methods import method_names

    base_path = tiny_config(os.path.join(CONFIGS, model, "sst-2_few-shot.jsonnet"), tiny_models, str(tmp_path))
    base = Params.from_file(base_path).as_dict(quiet=True)
    for method in method_names():
        swapped = with_method(base, method)
        assert swapped["model"]["type"] == "late_prompt_classifier"
        assert {k: v for k, v in swapped.items() if k not in ("model", "trainer")} == \
            {k: v for k, v in base.items() if k not in ("model", "trainer")}
        params = Params(swapped)
        prepare_environment(params)
        params.pop("evaluation", None)  # `allennlp evaluate`'s, which `allennlp train` sets aside
        trainer = TrainModel.from_params(params=params, serialization_dir=str(tmp_path / method), local_rank=0)
        trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
        assert trainable, method


def test_the_methods_tables_are_the_generated_one():
    """`allennlp lpt-methods` prints the table from the method classes; the documents show the
    same table (regenerate it with that command when a method changes)."""
    from allennlp_lpt.experiments.methods import methods_table

    for document in ("training_configs/README.md",):
        with open(os.path.join(ROOT, document)) as handle:
            assert methods_table() in handle.read(), f"{document}: paste the output of `allennlp lpt-methods`"
