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
METHOD_NAMES = ("lora", "ia3", "prompt_tuning", "prefix_tuning", "bitfit", "full")


def _method_of(config: str):
    """The method of a paper recipe's method config (`MODEL/METHOD/TASK_SETTING.jsonnet`)."""
    parent = os.path.basename(os.path.dirname(config))
    return parent if parent in METHOD_NAMES else None


# The paper's method configs are each the lpt-compare swap of a late-prompt config (checked for
# all of them below); one task per model and method is built, the rest would repeat it.
METHOD_CONFIGS = [c for c in ALL_CONFIGS if _method_of(c) or os.path.basename(os.path.dirname(c)) == "methods"]
BUILT = [c for c in ALL_CONFIGS if not _method_of(c) or os.path.basename(c) == "sst-2_few-shot.jsonnet"]


def test_configs_exist():
    assert os.path.join(CONFIGS, "quickstart.jsonnet") in ALL_CONFIGS


@pytest.mark.parametrize("config", BUILT, ids=lambda p: os.path.relpath(p, CONFIGS))
def test_every_shipped_config_builds(config, tiny_models, tmp_path):
    params = Params.from_file(tiny_config(config, tiny_models, str(tmp_path)))
    prepare_environment(params)  # pops the seeds, as `allennlp train` does
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


def _late_prompt_base(config: str) -> str:
    if _method_of(config):
        return os.path.join(os.path.dirname(os.path.dirname(config)), os.path.basename(config))
    return os.path.join(CONFIGS, "quickstart.jsonnet")


@pytest.mark.parametrize("config", METHOD_CONFIGS, ids=lambda p: os.path.relpath(p, CONFIGS))
def test_every_method_config_is_the_swap_lpt_compare_makes(config):
    from allennlp_lpt.experiments.methods import with_method

    method = _method_of(config) or os.path.basename(config)[len("quickstart_"):-len(".jsonnet")]
    base = Params.from_file(_late_prompt_base(config)).as_dict(quiet=True)
    shipped = Params.from_file(config).as_dict(quiet=True)
    swapped = with_method(base, method)
    for config_dict in (shipped, swapped):  # the same files, reached from another folder
        for key in [k for k in config_dict if k.endswith("_data_path")]:
            config_dict[key] = os.path.normpath(config_dict[key])
    assert shipped == swapped


def test_every_paper_config_has_every_method():
    for model in ("roberta-large", "gpt2-large"):
        tasks = sorted(os.path.basename(c) for c in glob.glob(os.path.join(CONFIGS, model, "*.jsonnet")))
        for method in METHOD_NAMES:
            assert sorted(os.listdir(os.path.join(CONFIGS, model, method))) == tasks


def test_the_method_defaults_agree_with_lpt_compare():
    """experiments/methods.py holds lpt-compare's defaults, the libsonnet the configs'; they must
    say the same."""
    import _jsonnet

    from allennlp_lpt.experiments.methods import BITFIT_GROUPS, DEFAULTS

    snippet = "local lpt = import 'common/lpt.libsonnet'; {defaults: lpt.methodDefaults, bitfit: lpt.bitfitGroups}"
    mirrored = json.loads(_jsonnet.evaluate_snippet("check", snippet, jpathdir=[CONFIGS]))
    assert set(mirrored["defaults"]) == set(DEFAULTS)
    for name, defaults in DEFAULTS.items():
        assert mirrored["defaults"][name] == {"lr": defaults.lr, "options": defaults.options}, name
    assert mirrored["bitfit"] == BITFIT_GROUPS
