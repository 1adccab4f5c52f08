"""
Macro-F1, per-label precision, recall and F1, and the confusion matrix, as `allennlp train` and
`allennlp evaluate` write them, against scikit-learn on the same predictions.
"""
import csv
import json
import os
from pathlib import Path
from typing import List

import pytest
from allennlp.commands.evaluate import evaluate_from_archive
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from config_swap import CONFIGS, FIXTURES, ROOT, tiny_config
from six_class import LABELS, ROWS, allennlp, ok


def _predicted(path: str) -> List[str]:
    """The predicted labels of `allennlp evaluate --predictions-output-file`, in file order (a
    line per row)."""
    with open(path) as handle:
        return [json.loads(line)["label"] for line in handle]


def _read_csv(path: str) -> List[List[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def _is_png(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 1000


@pytest.mark.parametrize("model, data", [
    pytest.param("basic", "own_data", id="lpt_basic_classifier"),
    pytest.param("verbalizer", "trec_data", id="late_prompt_classifier"),  # lpt_task's TREC
])
def test_train_and_evaluate_report_f1_and_the_confusion_matrix_as_sklearn_computes_them(
    model, data, six_class, tmp_path
):
    """The declared labels are 0..5; the file's rows first show them as 0, 1, 3, 5, 4, 2, so a
    matrix in the order AllenNLP's vocabulary met them would differ."""
    run, labels = Path(six_class[f"{model}_run"]), LABELS
    out = tmp_path / "eval"
    out.mkdir()
    ok(allennlp(
        "evaluate", six_class[model], six_class[data], "--output-file", str(out / "dev.json"),
        "--predictions-output-file", str(out / "dev.jsonl"),
    ))
    metrics = json.loads((out / "dev.json").read_text())
    gold, predicted = [label for label, _ in ROWS], _predicted(str(out / "dev.jsonl"))
    assert len(predicted) == len(gold)
    if model == "basic":  # varied predictions; the verbalizer's one tiny epoch predicts one
        assert len(set(predicted)) > 1  # label, whose zero rows and columns are checked then

    # Over every declared label, as FBetaMeasure averages over the model's labels: sklearn's
    # default would leave out labels neither gold nor predicted.
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(gold, predicted, labels=labels, average="macro", zero_division=0), abs=1e-6
    )
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, predicted, labels=labels, average=None, zero_division=0
    )
    for i, label in enumerate(labels):
        assert metrics[f"f1_label={label}"] == pytest.approx(f1[i], abs=1e-6), label
        assert metrics[f"precision_label={label}"] == pytest.approx(precision[i], abs=1e-6), label
        assert metrics[f"recall_label={label}"] == pytest.approx(recall[i], abs=1e-6), label
    assert "accuracy" in metrics

    # Beside --output-file: rows gold, columns predicted, in the declared order.
    table = _read_csv(str(out / "dev_confusion_matrix.csv"))
    assert table[0] == ["gold \\ predicted", *labels]
    assert [row[0] for row in table[1:]] == labels
    expected = confusion_matrix(gold, predicted, labels=labels).tolist()
    assert [[int(c) for c in row[1:]] for row in table[1:]] == expected
    assert _is_png(str(out / "dev_confusion_matrix.png"))

    # Training: beside metrics.json, the best (here the only) epoch's validation on the same
    # data, so the same matrix and figures.
    assert _read_csv(str(run / "confusion_matrix.csv")) == table
    assert _is_png(str(run / "confusion_matrix.png"))
    trained_metrics = json.loads((run / "metrics.json").read_text())
    assert trained_metrics["best_validation_macro_f1"] == pytest.approx(metrics["macro_f1"], abs=1e-6)
    for label in labels:
        assert trained_metrics[f"best_validation_f1_label={label}"] == pytest.approx(
            metrics[f"f1_label={label}"], abs=1e-6
        )


def test_an_archive_of_basic_classifier_gets_them_through_overrides(tmp_path, monkeypatch):
    """Legacy archives (`basic_classifier`, no `evaluation` key) still evaluate as before, and
    `-o` gives them the metrics and the matrix."""
    archive = os.path.join(FIXTURES, "legacy_archives", "basic-roberta.tar.gz")
    data = os.path.join(FIXTURES, "sst2_tiny.tsv")
    monkeypatch.chdir(ROOT)  # the archive names its model relative to the repository root
    plain = evaluate_from_archive(archive, data, metrics_output_file=str(tmp_path / "plain.json"))
    assert "accuracy" in plain and "macro_f1" not in plain
    assert not (tmp_path / "plain_confusion_matrix.csv").exists()

    overrides = json.dumps({"model.type": "lpt_basic_classifier", "evaluation": {"type": "lpt_confusion_matrix"}})
    metrics = evaluate_from_archive(
        archive, data, metrics_output_file=str(tmp_path / "dev.json"), cmd_overrides=overrides
    )
    assert metrics["accuracy"] == plain["accuracy"]  # the same weights and predictions
    assert {"macro_f1", "f1_label=0", "f1_label=1"} <= set(metrics)
    table = _read_csv(str(tmp_path / "dev_confusion_matrix.csv"))
    counts = [[int(c) for c in row[1:]] for row in table[1:]]
    total = sum(map(sum, counts))
    assert total == sum(1 for line in open(data) if line.strip()) - 1  # every row but the header
    assert sum(counts[i][i] for i in range(len(counts))) / total == pytest.approx(metrics["accuracy"])


def test_a_causal_verbalizer_with_acc_and_f1_trains_and_keeps_mrpcs_f1(tiny_models, tmp_path):
    """GPT-2's generative scoring counts no predictions while it trains (it scores the gold
    answer only), so its training epochs have no F1 to report; validation has all of them, and
    MRPC's `f1` (label "1" positive) is the per-label F1 of label 1."""
    from allennlp.commands.train import train_model_from_file

    config = tiny_config(os.path.join(CONFIGS, "gpt2-large", "mrpc_full-data.jsonnet"), tiny_models,
                         str(tmp_path), epochs=1)
    train_model_from_file(config, str(tmp_path / "run"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "training_macro_f1" not in metrics and "training_f1" not in metrics
    assert metrics["best_validation_f1"] == pytest.approx(metrics["best_validation_f1_label=1"], abs=1e-6)
    assert metrics["best_validation_acc_and_f1"] == pytest.approx(
        (metrics["best_validation_accuracy"] + metrics["best_validation_f1"]) / 2
    )
    assert (tmp_path / "run" / "confusion_matrix.csv").is_file()


def test_the_matrix_follows_the_declared_labels_and_drops_no_count():
    """A declared label the model lacks (no training row had it) is a row and column of zeros;
    a label of the model that the reader does not declare (another reader at evaluation) comes
    last rather than being dropped."""
    from allennlp_lpt.models.label_metrics import Confusion

    confusion = Confusion(("b", "a", "x"), ((1, 2, 3), (4, 5, 6), (7, 8, 9)))
    ordered = confusion.in_order(["a", "c", "b"])
    assert ordered.labels == ("a", "c", "b", "x")
    assert ordered.counts == ((5, 0, 4, 6), (0, 0, 0, 0), (2, 0, 1, 3), (8, 0, 7, 9))
    assert confusion.in_order(None) == confusion
