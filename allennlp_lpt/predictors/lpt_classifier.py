import json
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import JsonDict
from allennlp.data import Batch, DatasetReader, Instance
from allennlp.models import Model
from allennlp.nn import util as nn_util
from allennlp.predictors.predictor import Predictor

from allennlp_lpt.predictors.outputs import prediction_json, separate


class InputLineError(ValueError):
    """A line of a prediction input that the training reader's rules refuse."""


@Predictor.register("lpt_classifier")
class LatePromptClassifierPredictor(Predictor):
    """
    Predicts with a late-prompt archive: `late_prompt_classifier` (its default predictor) or
    `basic_classifier` (`allennlp predict ... --predictor lpt_classifier`).

    Input: JSON lines holding the texts under the column names the model was trained on (the
    reader's `text_columns`, e.g. `{"review": "..."}`), or under `sentence` (one text) or
    `sentence1` and `sentence2` (a pair); or, with `allennlp predict --use-dataset-reader`, a
    data file as the training reader reads it (a labelled TSV file). Each line must pass the
    training reader's rules (e.g. no empty text). With `allennlp predict`, the whole JSON input
    file is checked before anything is predicted (`check_input_file`), so a bad line stops the
    command with its line number and no partial output.

    Each prediction (`allennlp_lpt.predictors.outputs.prediction_json`) echoes its `input` (and
    a file row's `line` and `gold_label`) and gives `label` with its `label_name` where the
    reader names labels, `probs` in the order `labels` lists (the config's `labels` order for
    models trained with them), `class_probabilities`, `logits` and, for the verbalizer,
    `label_word`. It depends on the input alone, not on the batch it was predicted in.

    Registered as a `Predictor` with name "lpt_classifier".

    # Parameters

    model : `Model`
    dataset_reader : `DatasetReader`
    frozen : `bool`, optional (default = `True`)
    with_tokens : `bool`, optional (default = `False`)
        Add each input's `tokens` and `token_ids` as the model read them (without padding):
        `allennlp predict ... --predictor-args '{"with_tokens": true}'`.
    """

    def __init__(
        self, model: Model, dataset_reader: DatasetReader, frozen: bool = True, with_tokens: bool = False
    ) -> None:
        if not isinstance(with_tokens, bool):
            raise ConfigurationError(
                f"lpt_classifier: with_tokens={with_tokens!r}; give true or false, e.g. "
                f"--predictor-args '{{\"with_tokens\": true}}'."
            )
        super().__init__(model, dataset_reader, frozen)
        self.with_tokens = with_tokens

    def predict(self, sentence: str, sentence2: Optional[str] = None) -> JsonDict:
        if sentence2 is None:
            return self.predict_json({"sentence": sentence})
        return self.predict_json({"sentence1": sentence, "sentence2": sentence2})

    def _input_forms(self) -> List[List[str]]:
        """The key sets an input line may hold its texts under: the trained text columns first."""
        forms = [["sentence"], ["sentence1", "sentence2"]]
        columns = list(getattr(self._dataset_reader, "text_columns", None) or [])
        if columns and columns not in forms:
            forms.insert(0, columns)
        return forms

    def _json_to_instance(self, json_dict: JsonDict) -> Instance:
        if not isinstance(json_dict, dict):
            raise ValueError(f"expected a JSON object, got {json.dumps(json_dict)[:80]}")
        forms = self._input_forms()
        present = [form for form in forms if all(key in json_dict for key in form)]
        if not present:
            described = " or ".join(
                "{" + ", ".join(f"{key!r}: ..." for key in form) + "}" for form in forms
            )
            raise ValueError(f"expected {described}, got the keys {sorted(json_dict)}")
        texts = [json_dict[key] for key in present[0]]
        return self._dataset_reader.text_to_instance(*texts)  # type: ignore[call-arg]

    def load_line(self, line: str) -> JsonDict:
        """Parses one input line (under `allennlp predict` the whole file was checked first,
        see `check_input_file`)."""
        try:
            return json.loads(line)
        except json.JSONDecodeError as error:
            raise InputLineError(f"an input line is not JSON ({error}): {line.strip()[:80]!r}") from None

    def check_input_file(self, input_file: str) -> None:
        """
        Checks every line of a JSON-lines input file against the reader's rules, raising an
        InputLineError that names the file and line of the first bad one. `allennlp predict`
        calls it before predicting anything (installed by `allennlp_lpt.compat`).
        """
        for number, line in numbered_lines(input_file):
            parsed = parse_input_line(line, where=f"{input_file}:{number}")
            try:
                self._json_to_instance(parsed)
            except ValueError as error:
                raise InputLineError(f"{input_file}:{number}: {error}") from None

    def predict_json(self, inputs: JsonDict) -> JsonDict:
        return self._predict([self._json_to_instance(inputs)], [inputs])[0]

    def predict_batch_json(self, inputs: List[JsonDict]) -> List[JsonDict]:
        return self._predict([self._json_to_instance(one) for one in inputs], inputs)

    def predict_instance(self, instance: Instance) -> JsonDict:
        return self._predict([instance], [None])[0]

    def predict_batch_instance(self, instances: List[Instance]) -> List[JsonDict]:
        return self._predict(instances, [None] * len(instances))

    def _predict(self, instances: List[Instance], given: Sequence[Optional[JsonDict]]) -> List[JsonDict]:
        """`Model.forward_on_instances`, without the labels of labelled rows: the prediction
        gives the gold label beside its own, and the model computes no loss of the batch
        (which AllenNLP would drop with a warning)."""
        for instance in instances:
            self._dataset_reader.apply_token_indexers(instance)
        model = self._model
        with torch.no_grad():
            batch = Batch(instances)
            batch.index_instances(model.vocab)
            tensors = batch.as_tensor_dict()
            tensors.pop("label", None)
            raw = model(**nn_util.move_to_device(tensors, model._get_prediction_device()))
            outputs = separate(model.make_output_human_readable(raw), len(instances), model)
        return [self.prediction(output, instance, one) for output, instance, one in zip(outputs, instances, given)]

    def prediction(
        self, output: Dict[str, Any], instance: Instance, given: Optional[JsonDict] = None
    ) -> JsonDict:
        """One input's prediction from the model's output for it (see `prediction_json`)."""
        return prediction_json(
            output, instance, self._model, self._dataset_reader, given=given, with_tokens=self.with_tokens
        )


def parse_input_line(line: str, *, where: str) -> JsonDict:
    """One JSON-lines input line; an InputLineError naming `where` (file:line) if it is not JSON."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise InputLineError(
            f"{where}: the line is not JSON ({error.msg} at column {error.colno}): "
            f"{line.strip()[:80]!r}. Give one JSON object per line."
        ) from None


def numbered_lines(path: str) -> Iterator[Tuple[int, str]]:
    """(line number, line) of the non-blank lines, as `allennlp predict` reads them."""
    from allennlp.common.file_utils import cached_path

    with open(cached_path(path)) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.isspace():
                yield number, line
