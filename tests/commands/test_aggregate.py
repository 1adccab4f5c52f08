import json
import os

import pytest

from allennlp_lpt.experiments.aggregate import aggregate


def fake_run(folder, *, task, model, train, metrics, mismatched=None):
    os.makedirs(folder)
    config = {
        "train_data_path": train,
        "dataset_reader": {"type": "lpt_task", "task": task, "model_name": model},
        "model": {"text_field_embedder": {"token_embedders": {"tokens": {"model_name": model}}}},
    }
    with open(os.path.join(folder, "config.json"), "w") as handle:
        json.dump(config, handle)
    with open(os.path.join(folder, "metrics.json"), "w") as handle:
        json.dump(metrics, handle)
    if mismatched is not None:
        with open(os.path.join(folder, "metrics_mismatched.json"), "w") as handle:
            json.dump({"accuracy": mismatched}, handle)


def test_mean_and_std_over_seeds_per_experiment(tmp_path):
    for seed, value in zip((13, 21, 42), (0.80, 0.84, 0.88)):
        fake_run(tmp_path / f"sst2-{seed}", task="sst-2", model="roberta-large",
                 train=f"data/k-shot/sst-2/16-{seed}/train.tsv",
                 metrics={"test_accuracy": value, "best_validation_accuracy": 0.5})
    for seed, value in zip((13, 21), (0.70, 0.74)):
        fake_run(tmp_path / f"mrpc-{seed}", task="mrpc", model="roberta-large",
                 train=f"data/k-shot/mrpc/16-{seed}/train.tsv",
                 metrics={"test_accuracy": 0.1, "test_acc_and_f1": value})
    fake_run(tmp_path / "mnli", task="mnli", model="gpt2-large", train="data/original/mnli/train.tsv",
             metrics={"test_accuracy": 0.80}, mismatched=0.70)
    fake_run(tmp_path / "nodev", task="rte", model="roberta-large", train="data/original/rte/train.tsv",
             metrics={"best_validation_accuracy": 0.6})
    table = aggregate([str(tmp_path)]).splitlines()
    assert table[2] == "| task | model | setting | metric | mean ± std (%) | runs |"
    assert "| sst-2 | roberta-large | few-shot k=16 | test accuracy | 84.00 ± 4.00 | 3 |" in table
    assert "| mrpc | roberta-large | few-shot k=16 | test acc_and_f1 | 72.00 ± 2.83 | 2 |" in table
    assert "| mnli | gpt2-large | full data | test accuracy (m + mm) / 2 | 75.00 | 1 |" in table
    assert "| rte | roberta-large | full data | best dev accuracy | 60.00 | 1 |" in table


def test_nothing_to_aggregate(tmp_path):
    with pytest.raises(ValueError, match="no serialization directory"):
        aggregate([str(tmp_path)])


def test_runs_of_different_variants_are_never_averaged(tmp_path):
    """A sweep's tree: two prompt layers (set on both halves) x two generators x two seeds.
    Before, all eight runs were averaged into one row."""
    for layer in (6, 12):
        for generator in ("npg", "mppg"):
            for seed, value in ((13, 0.80), (21, 0.90)):
                folder = tmp_path / f"prompt_layer={layer}_type={generator}_seed={seed}"
                fake_run(folder, task="sst-2", model="roberta-large",
                         train=f"data/k-shot/sst-2/16-{seed}/train.tsv",
                         metrics={"test_accuracy": value + layer / 1000})
                config = json.loads((folder / "config.json").read_text())
                config["model"]["text_field_embedder"]["token_embedders"]["tokens"]["prompt_layer"] = layer
                config["model"]["seq2vec_encoder"] = {"prompt_layer": layer, "generator": {"type": generator}}
                config.update(random_seed=seed, numpy_seed=seed, pytorch_seed=seed)
                (folder / "config.json").write_text(json.dumps(config))
    table = aggregate([str(tmp_path)]).splitlines()
    assert table[2] == "| task | model | setting | type | prompt_layer | metric | mean ± std (%) | runs |"
    assert len(table) == 4 + 4
    assert '| sst-2 | roberta-large | few-shot k=16 | "mppg" | 12 | test accuracy | 86.20 ± 7.07 | 2 |' in table
    assert '| sst-2 | roberta-large | few-shot k=16 | "npg" | 6 | test accuracy | 85.60 ± 7.07 | 2 |' in table


def test_a_multi_class_task_gets_macro_f1_beside_accuracy(tmp_path):
    """TREC's six labels: the macro-F1 of the same set beside the accuracy; two-label tasks in
    the same table show none."""
    labels = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    for seed, (accuracy, macro) in zip((13, 21), ((0.80, 0.70), (0.90, 0.74))):
        fake_run(tmp_path / f"trec-{seed}", task="trec", model="m", train=f"data/k-shot/trec/16-{seed}/train.tsv",
                 metrics={"test_accuracy": accuracy, "test_macro_f1": macro,
                          **{f"test_f1_label={label}": 0.5 for label in labels}})
    fake_run(tmp_path / "sst2", task="sst-2", model="m", train="data/original/sst-2/train.tsv",
             metrics={"test_accuracy": 0.9, "test_macro_f1": 0.89, "test_f1_label=0": 0.9, "test_f1_label=1": 0.88})
    table = aggregate([str(tmp_path)]).splitlines()
    assert table[2] == "| task | model | setting | metric | mean ± std (%) | macro-F1 (%) | runs |"
    assert "| trec | m | few-shot k=16 | test accuracy | 85.00 ± 7.07 | 72.00 ± 2.83 | 2 |" in table
    assert "| sst-2 | m | full data | test accuracy | 90.00 |  | 1 |" in table
