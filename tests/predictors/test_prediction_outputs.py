"""
What a prediction says, through the real commands: `probs` in the order of the config's
`labels` (a 6-class TREC-style model, whose labels AllenNLP's vocabulary would order by
frequency), label names from the task or the reader's `label_names`, the input echoed, nothing
that depends on the batch (padding, batch loss), the trained column names accepted, a labelled
TSV file predicted and evaluated row by row in file order, `lpt-predict-multi` to stdout.
"""
import csv
import json
import os
from typing import Any, Dict, List

import pytest
from allennlp.common.checks import ConfigurationError
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor
from sklearn.metrics import accuracy_score

from six_class import LABELS, OWN_NAMES, ROWS, TREC_NAMES, allennlp as _allennlp, jsonl as _jsonl, ok as _ok

def _predict(archive: str, tmp_path, lines: List[Dict[str, Any]], *extra: str) -> List[Dict[str, Any]]:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out.jsonl"
    _ok(_allennlp("predict", archive, str(source), "--predictor", "lpt_classifier",
                  "--output-file", str(out), "--silent", *extra))
    return _jsonl(out)


@pytest.mark.parametrize("model,key,names", [
    ("basic", "question", [OWN_NAMES[label] for label in LABELS]),
    ("verbalizer", "sentence", TREC_NAMES),
])
def test_probs_follow_the_configs_labels_and_predictions_name_them(six_class, tmp_path, model, key, names):
    texts = ["who was the actor ?", "how many films are there ?", "what does a b c stand for ?"]
    outputs = _predict(six_class[model], tmp_path, [{key: text} for text in texts], "--batch-size", "2")
    assert len(outputs) == len(texts)
    for text, output in zip(texts, outputs):
        # The order of the config's labels (the task's for lpt_task), not the frequency order
        # 0, 1, 3, 5, 4, 2 of the training data.
        assert output["labels"] == LABELS
        assert len(output["probs"]) == 6 and abs(sum(output["probs"]) - 1) < 1e-5
        for label, probability in zip(LABELS, output["probs"]):
            assert output["class_probabilities"][label] == pytest.approx(probability)
        assert output["label"] == LABELS[output["probs"].index(max(output["probs"]))]
        assert output["label_name"] == names[LABELS.index(output["label"])]
        assert output["input"] == {key: text}


def test_label_names_travel_in_the_archive(six_class):
    archive = load_archive(six_class["basic"])
    assert archive.config["dataset_reader"]["label_names"].as_dict() == OWN_NAMES
    assert archive.validation_dataset_reader.label_names == OWN_NAMES


def test_label_names_must_name_exactly_the_declared_labels(tiny_models):
    from allennlp_lpt.data.dataset_readers import TsvClassificationReader

    model = tiny_models["roberta"]
    with pytest.raises(ConfigurationError, match=r"label_names needs dataset_reader.labels"):
        TsvClassificationReader(model, label_names={"0": "negative", "1": "positive"})
    with pytest.raises(ConfigurationError, match=r"\['2'\] are not labels; \['1'\] have no name"):
        TsvClassificationReader(model, labels=["0", "1"], label_names={"0": "negative", "2": "positive"})


def _same_but_float_rounding(one: Any, other: Any) -> bool:
    """Equal JSON values, floats up to the last digits of float32 (a batch's padding changes
    the order of the sums in the model, not what the model computes)."""
    if isinstance(one, float) and isinstance(other, float):
        return abs(one - other) <= 1e-6
    if isinstance(one, dict) and isinstance(other, dict):
        return list(one) == list(other) and all(_same_but_float_rounding(one[k], other[k]) for k in one)
    if isinstance(one, list) and isinstance(other, list):
        return len(one) == len(other) and all(_same_but_float_rounding(a, b) for a, b in zip(one, other))
    return type(one) is type(other) and one == other


def test_a_prediction_echoes_its_input_and_does_not_depend_on_its_batch(six_class):
    """The same line alone and beside a longer one gives the same JSON (its numbers up to float
    rounding): no padding, no loss of a batch of one, no tokens unless asked for (and then
    without padding)."""
    short = {"question": "who is it ?", "id": 7}
    longer = {"question": "what is the story of the movie that was very good and fun and long ?"}
    for with_tokens in (False, True):
        predictor = Predictor.from_archive(load_archive(six_class["basic"]), "lpt_classifier",
                                           extra_args={"with_tokens": with_tokens})
        alone = predictor.predict_json(short)
        together = predictor.predict_batch_json([short, longer])
        assert _same_but_float_rounding(alone, together[0]), (alone, together[0])
        assert alone["input"] == short  # as given, extra keys included
        assert "loss" not in alone
        if with_tokens:
            pad = predictor._dataset_reader.tokenizer.pad_token
            assert pad not in alone["tokens"] and len(alone["tokens"]) == len(alone["token_ids"])
            assert len(together[1]["tokens"]) > len(alone["tokens"])
        else:
            assert "tokens" not in alone and "token_ids" not in alone


def test_the_trained_column_names_are_accepted_and_a_bad_line_names_them(six_class, tmp_path):
    from allennlp_lpt.predictors.lpt_classifier import InputLineError

    predictor = Predictor.from_archive(load_archive(six_class["basic"]), "lpt_classifier")
    by_column = predictor.predict_json({"question": "who is it ?"})
    by_sentence = predictor.predict_json({"sentence": "who is it ?"})
    assert by_column["probs"] == by_sentence["probs"]
    source = tmp_path / "bad.jsonl"
    source.write_text('{"question": "who is it ?"}\n{"text": "who is it ?"}\n')
    with pytest.raises(InputLineError) as error:
        predictor.check_input_file(str(source))  # what `allennlp predict` runs first
    assert str(error.value).startswith(f"{source}:2: expected {{'question': ...}} or {{'sentence': ...}}")


def _rows(path: str, header: bool) -> List[Dict[str, Any]]:
    """The file's rows, read independently: line number, text, gold label."""
    with open(path) as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    if header:
        return [{"line": n + 2, "text": row[0], "label": row[1]} for n, row in enumerate(rows[1:])]
    return [{"line": n + 1, "text": row[1], "label": row[0]} for n, row in enumerate(rows)]


def test_a_labelled_tsv_file_is_predicted_row_by_row_in_file_order(six_class, tmp_path):
    model, data, column = "basic", "own_data", "question"
    out = tmp_path / "rows.jsonl"
    _ok(_allennlp("predict", six_class[model], six_class[data], "--use-dataset-reader", "--predictor",
                  "lpt_classifier", "--batch-size", "4", "--output-file", str(out), "--silent"))
    predicted = _jsonl(out)
    rows = _rows(six_class[data], header=model == "basic")
    assert len(predicted) == len(rows) == len(ROWS)
    for row, output in zip(rows, predicted):
        assert (output["line"], output["input"], output["gold_label"]) == (row["line"], {column: row["text"]}, row["label"])
        assert output["label"] in LABELS and output["labels"] == LABELS


@pytest.mark.parametrize("model,data", [("basic", "own_data"), ("verbalizer", "trec_data")])
def test_evaluate_writes_its_predictions_row_by_row_in_file_order(six_class, tmp_path, model, data):
    """The quickstart's validation loader batches by length; the predictions file still lists
    the rows in the file's order, and its labels give the metric evaluate reports."""
    predictions, metrics = tmp_path / "predictions.jsonl", tmp_path / "metrics.json"
    _ok(_allennlp("evaluate", six_class[model], six_class[data], "--predictions-output-file",
                  str(predictions), "--output-file", str(metrics)))
    predicted = _jsonl(predictions)
    rows = _rows(six_class[data], header=model == "basic")
    assert [output["line"] for output in predicted] == [row["line"] for row in rows]
    assert [list(output["input"].values())[0] for output in predicted] == [row["text"] for row in rows]
    gold = [row["label"] for row in rows]
    assert [output["gold_label"] for output in predicted] == gold
    accuracy = accuracy_score(gold, [output["label"] for output in predicted])
    assert json.loads(metrics.read_text())["accuracy"] == pytest.approx(accuracy)


def test_predict_multi_without_output_file_prints_to_stdout(six_class, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"sentence": "who is it ?"}\n{"sentence": "how many ?"}\n')
    done = _ok(_allennlp("lpt-predict-multi", six_class["basic"], six_class["basic"], str(source),
                         "--names", "one", "two"))
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2 and all(list(line) == ["one", "two"] for line in lines)
    assert lines[0]["one"]["input"] == {"sentence": "who is it ?"}
    assert lines[0]["one"]["probs"] == lines[0]["two"]["probs"]


def test_legacy_archives_name_the_order_of_their_probs():
    """Archives trained before list their labels by frequency (`1`, `0`): they keep that order,
    and each prediction says so."""
    from test_legacy_archives import LEGACY, model_name_overrides

    legacy = os.path.join(LEGACY, "verbalizer-roberta.tar.gz")
    predictor = Predictor.from_archive(load_archive(legacy, overrides=model_name_overrides(legacy)))
    output = predictor.predict_json({"sentence": "it was good"})
    assert output["labels"] == ["1", "0"]
    assert output["class_probabilities"] == dict(zip(["1", "0"], output["probs"]))
    assert output["label_name"] == {"0": "negative", "1": "positive"}[output["label"]]
