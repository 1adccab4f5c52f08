"""`allennlp lpt-compare` end to end on a tiny model: the table, the runs, the plot, a resumed
comparison that retrains nothing, the time budget, and bad input."""
import csv
import json
import os

import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError

from allennlp_lpt.experiments.compare import COLUMNS, compare
from allennlp_lpt.experiments.methods import with_method
from config_swap import CONFIGS, tiny_config


@pytest.fixture
def base(tiny_models, tmp_path):
    return tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="roberta", epochs=1)


def rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_two_methods_two_seeds_then_a_resume_that_trains_nothing(base, tmp_path):
    out = str(tmp_path / "out")
    first = compare(base, out, methods=["late_prompt", "lora"], seeds=[1, 2])
    assert not first.failed and len(first.trained) == 4
    table = rows(os.path.join(out, "comparison.csv"))
    assert list(table[0]) == list(COLUMNS)
    assert [row["method"] for row in table] == ["late_prompt", "lora"]
    assert all(row["seeds"] == "2" for row in table)
    late, lora = table
    # Each method's own trainable parameters: late prompt's generator and head, LoRA's adapter and head.
    assert int(float(late["trainable_parameters"])) != int(float(lora["trainable_parameters"]))
    assert all(0 <= float(row["accuracy_mean"]) <= 1 and float(row["train_seconds"]) > 0 for row in table)
    assert len(rows(os.path.join(out, "runs.csv"))) == 4
    assert os.path.getsize(os.path.join(out, "comparison.png")) > 0
    # One scale for every table: percent with 2 decimals, mean ± sample std over the seeds, the
    # same cells as lpt-aggregate of the same runs.
    import statistics

    from allennlp_lpt.experiments.aggregate import aggregate

    markdown = open(os.path.join(out, "comparison.md")).read()
    aggregated = aggregate([out])
    for method in ("late_prompt", "lora"):
        scores = [float(r["score"]) for r in rows(os.path.join(out, "runs.csv")) if r["method"] == method]
        cell = f"{100 * statistics.mean(scores):.2f} ± {100 * statistics.stdev(scores):.2f}"
        assert f"| {method} | {cell} | 2 |" in markdown
        assert f"| best dev accuracy | {cell} | 2 |" in aggregated
    assert "| method | accuracy (%) | seeds |" in markdown and "percent" in markdown
    # Inference throughput, measured on the evaluation set, and the archive's size.
    assert all(float(row["sentences_per_second"]) > 0 and float(row["archive_mb"]) > 0 for row in table)
    inference = json.load(open(os.path.join(out, "lora_seed=1", "inference.json")))
    assert inference["sentences"] == 12 and inference["data_path"].endswith("sst2_tiny.tsv")
    # The runs are real `allennlp train` runs of the swapped config.
    saved = json.load(open(os.path.join(out, "lora_seed=2", "config.json")))
    assert saved["model"]["text_field_embedder"]["token_embedders"]["tokens"]["type"] == "peft_transformer"
    assert saved["random_seed"] == 2 and saved["trainer"]["optimizer"]["lr"] == 5e-4

    again = compare(base, out, methods=["late_prompt", "lora"], seeds=[1, 2])
    assert again.trained == [] and len(again.reused) == 4
    assert rows(os.path.join(out, "comparison.csv")) == table
    # Other options for a method whose runs finished: refused (not silently mixed), unless
    # --rerun-changed.
    with pytest.raises(ConfigurationError, match=r"(?s)lpt-compare: 2 finished run\(s\) .*lora_seed=1 .*lora_seed=2 .* --rerun-changed"):
        compare(base, out, methods=["lora"], seeds=[1, 2], method_options={"lora": {"r": 2}})


def test_the_time_budget_stops_a_run_and_keeps_its_best_checkpoint(base, tmp_path):
    out = str(tmp_path / "out")
    outcome = compare(base, out, methods=["full"], seeds=[1], time_budget=1.0,
                      overrides={"trainer.num_epochs": 500})
    assert not outcome.failed
    run = outcome.runs[0]
    assert run["stopped_by_time_budget"] is True
    metrics = json.load(open(os.path.join(out, "full_seed=1", "metrics.json")))
    assert metrics["epoch"] < 499 and "best_validation_accuracy" in metrics
    assert os.path.isfile(os.path.join(out, "full_seed=1", "model.tar.gz"))
    # One seed: its score alone, no "± 0.00".
    [line] = [line for line in open(os.path.join(out, "comparison.md")) if line.startswith("| full |")]
    assert line.startswith(f"| full | {100 * run['score']:.2f} | 1 |") and "±" not in line


def test_the_epoch_the_budget_stops_is_validated_on_the_validation_rows_alone(base, tmp_path):
    # The budget runs out at the first batch. AllenNLP clears the model's metric counts only at
    # a full epoch's end: uncleared, the validation after the stop would count that batch too.
    out = str(tmp_path / "out")
    compare(base, out, methods=["full"], seeds=[1], time_budget=1e-9)
    run = os.path.join(out, "full_seed=1")
    validation_file = json.load(open(base))["validation_data_path"]
    validation_rows = sum(1 for _ in open(validation_file)) - 1
    with open(os.path.join(run, "confusion_matrix.csv")) as handle:
        counted = sum(int(cell) for row in list(csv.reader(handle))[1:] for cell in row[1:])
    assert counted == validation_rows
    epoch = json.load(open(os.path.join(run, "metrics_epoch_0.json")))
    assert epoch["stopped_by_time_budget"] is True
    correct = epoch["validation_accuracy"] * validation_rows
    assert abs(correct - round(correct)) < 1e-6
    # The stopped epoch's training figures are its own batch's (AllenNLP would report none).
    assert epoch["training_loss"] > 0 and 0 <= epoch["training_accuracy"] <= 1


def test_method_options_change_the_defaults(base, tmp_path):
    from allennlp_lpt.experiments.compare import method_configs

    paths = method_configs(base, ["lora"], str(tmp_path), {}, {"lora": {"r": 2, "lr": 0.01}}, None)
    config = json.load(open(paths["lora"]))
    assert config["model"]["text_field_embedder"]["token_embedders"]["tokens"]["method"]["r"] == 2
    assert config["trainer"]["optimizer"]["lr"] == 0.01


@pytest.mark.parametrize("methods, options, budget, message", [
    (["late_prompt", "adapters"], {}, None, r"--methods: unknown method\(s\) \['adapters'\]; choose from late_prompt, bitfit, full, ia3, lora"),
    ([], {}, None, "--methods: give at least one"),
    (["lora"], {"ia3": {}}, None, r"--method-options: \['ia3'\] are not among --methods"),
    (["lora"], {}, 0.0, "--time-budget 0.0: give a number of seconds above 0"),
    (["full"], {"full": {"r": 4}}, None, r"full takes no options besides lr"),
    (["lora"], {"lora": {"rank": 4}}, None, r"lora takes r, alpha, dropout, target_modules \(and lr\); got rank"),
    (["lora"], {"lora": {"r": 0}}, None, r"r=0: give an integer of 1 or more"),
    (["lora", "late_prompt", "lora"], {}, None, r"--methods: lora given more than once"),
])
def test_bad_flags_are_configuration_errors(base, tmp_path, methods, options, budget, message):
    with pytest.raises(ConfigurationError, match=message):
        compare(base, str(tmp_path / "out"), methods=methods, method_options=options, time_budget=budget)


def test_seeds_given_twice_are_refused_before_anything_is_written(base, tmp_path):
    with pytest.raises(ConfigurationError, match="--seeds: 1 given more than once"):
        compare(base, str(tmp_path / "out"), methods=["late_prompt"], seeds=[1, 2, 1])
    assert not (tmp_path / "out").exists()


def test_a_base_config_without_late_prompt_is_refused(tmp_path):
    config = Params.from_file(os.path.join(CONFIGS, "baselines", "minilm_frozen_linear.jsonnet")).as_dict(quiet=True)
    with pytest.raises(ConfigurationError, match="lpt-compare needs a late-prompt training config"):
        with_method(config, "lora", source="minilm_frozen_linear.jsonnet")


def test_configs_only_writes_each_methods_config_for_allennlp_train(base, tmp_path):
    """`--configs-only`: the swapped configs, written for `allennlp train`, and no run."""
    import subprocess
    import sys

    from config_swap import ROOT

    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "allennlp", "lpt-compare", base, "-s", str(out), "--methods", "lora,full",
         "--configs-only"], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["configs"]
    assert sorted(os.listdir(out / "configs")) == ["full.json", "lora.json"]
    expected = with_method(Params.from_file(base).as_dict(quiet=True), "lora")
    assert json.load(open(out / "configs" / "lora.json")) == expected
