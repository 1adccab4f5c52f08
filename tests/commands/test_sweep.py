import csv
import io
import json
import os
import tarfile

import pytest
import torch

from allennlp_lpt.experiments.sweep import parse_grid, run_sweep, sweep
from allennlp.common.checks import ConfigurationError
from config_swap import CONFIGS, tiny_config


def test_a_sweep_over_the_prompt_layer_and_seeds(tiny_models, tmp_path):
    config = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="roberta", epochs=1)
    out = tmp_path / "sweep"
    # (A failing run is the command test's below.)
    grid = parse_grid('{"*.prompt_layer": [1, 2]}')
    rows = sweep(config, grid, str(out), seeds=[1, 2], fixed={"trainer.num_epochs": 1})
    assert len(rows) == 4
    with open(out / "results.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["run"] for r in table] == ["prompt_layer=1_seed=1", "prompt_layer=1_seed=2",
                                         "prompt_layer=2_seed=1", "prompt_layer=2_seed=2"]
    assert all(0 <= float(r["best_dev_accuracy"]) <= 1 and float(r["training_seconds"]) > 0 for r in table)
    saved = json.loads((out / "prompt_layer=2_seed=1" / "config.json").read_text())
    lower = saved["model"]["text_field_embedder"]["token_embedders"]["tokens"]
    assert lower["prompt_layer"] == 2 and saved["model"]["seq2vec_encoder"]["prompt_layer"] == 2
    assert saved["random_seed"] == saved["numpy_seed"] == saved["pytorch_seed"] == 1
    summary = (out / "results.md").read_text().splitlines()
    # Percent with 2 decimals, as lpt-aggregate and lpt-compare show them.
    assert summary[2] == "| *.prompt_layer | best_dev_accuracy (%) | runs |"
    assert len(summary) == 6 and summary[4].startswith("| 1 | ") and summary[4].endswith("| 2 |")
    first_two = [float(r["best_dev_accuracy"]) for r in table[:2]]
    mean = sum(first_two) / 2
    std = abs(first_two[0] - first_two[1]) / 2 ** 0.5
    assert summary[4] == f"| 1 | {100 * mean:.2f} ± {100 * std:.2f} | 2 |"
    from allennlp_lpt.experiments.aggregate import aggregate

    assert f"| 1 | best dev accuracy | {100 * mean:.2f} ± {100 * std:.2f} | 2 |" in aggregate([str(out)])
    assert (out / "plot.png").read_bytes()[:4] == b"\x89PNG"
    # Lean run folders: the archive holds only what trained, and no per-epoch checkpoint is kept.
    run = out / "prompt_layer=1_seed=1"
    assert not [name for name in os.listdir(run) if name.startswith(("model_state_", "training_state_"))]
    with tarfile.open(run / "model.tar.gz") as archive:
        weights = torch.load(io.BytesIO(archive.extractfile("weights.th").read()), weights_only=True)
    trainable = json.loads((run / "parameter_counts.json").read_text())["trainable"]
    assert sum(tensor.numel() for tensor in weights.values()) == trainable
    # Started again, finished runs are skipped (their metrics are not rewritten).
    before = os.path.getmtime(out / "prompt_layer=1_seed=1" / "metrics.json")
    sweep(config, grid, str(out), seeds=[1, 2], fixed={"trainer.num_epochs": 1})
    assert os.path.getmtime(out / "prompt_layer=1_seed=1" / "metrics.json") == before
    # Another config for the same runs: every one of them is named.
    with pytest.raises(ConfigurationError) as refused:
        sweep(config, grid, str(out), seeds=[1, 2], fixed={"trainer.num_epochs": 1, "trainer.grad_clipping": 0.5})
    assert "4 finished run(s)" in str(refused.value) and "--rerun-changed" in str(refused.value)
    for name in ("prompt_layer=1_seed=1", "prompt_layer=1_seed=2", "prompt_layer=2_seed=1", "prompt_layer=2_seed=2"):
        assert f"\n  {name} (trainer.grad_clipping: saved 1, now 0.5)" in str(refused.value)
    # A run killed while archiving, as an archive writer without the atomic rename leaves it:
    # metrics.json there, model.tar.gz cut short, not marked. Trained again, not reused.
    archive = run / "model.tar.gz"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    (run / "finished.json").unlink()
    outcome = run_sweep(config, grid, str(out), seeds=[1, 2], fixed={"trainer.num_epochs": 1})
    assert outcome.trained == ["prompt_layer=1_seed=1"] and len(outcome.reused) == 3
    with tarfile.open(archive) as complete:
        assert {"config.json", "weights.th"} <= set(complete.getnames())


def test_bad_grids():
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        parse_grid("{prompt_layer: [1]}")
    with pytest.raises(ConfigurationError, match="non-empty list"):
        parse_grid('{"a.b": 3}')


def test_run_names_keep_enough_of_each_key_to_be_unique():
    from allennlp_lpt.experiments.sweep import plan, short_names

    assert short_names(["model.a.dropout", "model.b.dropout", "*.prompt_layer"]) == {
        "model.a.dropout": "a.dropout", "model.b.dropout": "b.dropout", "*.prompt_layer": "prompt_layer"}
    config = {"model": {"a": {"dropout": 0.0}, "b": {"dropout": 0.0}}}
    grid = {"model.a.dropout": [0.1], "model.b.dropout": [0.2]}
    [run] = plan(config, grid, [None], {})
    assert run.name == "a.dropout=0.1_b.dropout=0.2"


def test_runs_that_would_share_a_folder_are_an_error(tiny_models, tmp_path):
    config = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="roberta")
    grid = {"model.seq2vec_encoder.pooling": ["a b", "a_b"]}
    with pytest.raises(ConfigurationError, match="would both be named 'pooling=a_b'"):
        sweep(config, grid, str(tmp_path / "out"))


def test_the_command_summarises_and_fails_when_a_run_failed(tiny_models, tmp_path):
    import subprocess
    import sys

    from config_swap import ROOT

    config = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="roberta")
    done = subprocess.run(
        [sys.executable, "-m", "allennlp", "lpt-sweep", config, "-s", str(tmp_path / "out"),
         "--grid", '{"*.prompt_layer": [9]}'],  # out of range: the run fails
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "0 trained, 0 reused (finished with the same config), 1 failed" in done.stdout + done.stderr
    assert "failed: prompt_layer=9 (log: " in done.stdout + done.stderr
    assert "run prompt_layer=9 failed (exit 1)" in done.stdout + done.stderr
    assert os.path.isfile(tmp_path / "out" / "logs" / "prompt_layer=9.log")


def test_data_seeds_move_the_few_shot_paths_and_stay_apart_from_training_seeds():
    """`--data-seeds` picks lpt-few-shot's split (the K-SEED folder of every data path that has
    one); `--seeds` the training seed: one run per pair, each named by both."""
    from allennlp_lpt.experiments.sweep import plan

    config = {"train_data_path": "data/k-shot/sst-2/100-13/train.tsv",
              "validation_data_path": "data/k-shot/sst-2/100-13/dev.tsv",
              "test_data_path": "data/original/sst-2/dev.tsv", "model": {"prompt_layer": 3}}
    runs = plan(config, {}, [42, 7], {}, [13, 21])
    assert [run.name for run in runs] == ["data_seed=13_seed=42", "data_seed=13_seed=7",
                                          "data_seed=21_seed=42", "data_seed=21_seed=7"]
    third = runs[2].overrides
    assert third["train_data_path"] == "data/k-shot/sst-2/100-21/train.tsv"
    assert third["validation_data_path"] == "data/k-shot/sst-2/100-21/dev.tsv"
    assert "test_data_path" not in third and third["random_seed"] == 42


def test_data_seeds_need_a_few_shot_split_in_the_config():
    from allennlp_lpt.experiments.sweep import plan

    config = {"train_data_path": "data/sst2/train.tsv", "validation_data_path": "data/sst2/dev.tsv"}
    with pytest.raises(ConfigurationError, match=r"--data-seeds: no data path .* K-SEED folder .*train_data_path='data/sst2/train.tsv'"):
        plan(config, {}, [None], {}, [13])


def test_aggregate_averages_a_data_seed_sweep_into_one_row(tmp_path):
    """The runs `--data-seeds` writes differ only in their data seed: one experiment, mean ± std
    over the splits."""
    from allennlp_lpt.experiments.aggregate import aggregate

    for seed, accuracy in [(13, 0.70), (21, 0.74)]:
        folder = tmp_path / f"data_seed={seed}_seed=42"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({
            "dataset_reader": {"task": "sst-2"}, "model": {"model_name": "m"},
            "train_data_path": f"data/k-shot/sst-2/100-{seed}/train.tsv", "random_seed": 42}))
        (folder / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy}))
    rows = aggregate([str(tmp_path)]).splitlines()
    assert len(rows) == 5 and "| few-shot k=100 | test accuracy | 72.00 ± 2.83 | 2 |" in rows[4]


def test_the_plot_of_an_integer_key_has_integer_ticks():
    """Prompt layers are whole numbers: no 1.5 on the axis."""
    import matplotlib.pyplot as plt

    from allennlp_lpt.experiments.sweep import draw

    grid = {"*.prompt_layer": [1, 2]}
    rows = [{"*.prompt_layer": k, "best_dev_accuracy": 0.5 + 0.1 * k} for k in (1, 2)]
    figure = draw(rows, grid, "best_dev_accuracy", "*.prompt_layer")
    try:
        ticks = figure.axes[0].get_xticks()
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    finally:
        plt.close(figure)
