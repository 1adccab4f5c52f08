import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

from allennlp.common.util import JsonDict
from allennlp.data import Instance
from allennlp.predictors.predictor import Predictor


class InputLineError(ValueError):
    """A line of a prediction input that the training reader's rules refuse."""


@Predictor.register("lpt_classifier")
class LatePromptClassifierPredictor(Predictor):
    """
    Predicts with a late-prompt archive: `late_prompt_classifier` (its default predictor) or
    `basic_classifier` (`allennlp predict ... --predictor lpt_classifier`). Accepts JSON lines
    `{"sentence": "..."}` or, for pair tasks, `{"sentence1": "...", "sentence2": "..."}`, and
    returns `label`, `class_probabilities` (label -> probability) and, for the verbalizer,
    `label_word`, besides the model's logits.

    Each line must pass the training reader's rules (e.g. no empty text). With `allennlp
    predict`, the whole input file is checked before anything is predicted (`check_input_file`),
    so a bad line stops the command with its line number and no partial output.

    Registered as a `Predictor` with name "lpt_classifier".
    """

    def predict(self, sentence: str, sentence2: Optional[str] = None) -> JsonDict:
        if sentence2 is None:
            return self.predict_json({"sentence": sentence})
        return self.predict_json({"sentence1": sentence, "sentence2": sentence2})

    def _json_to_instance(self, json_dict: JsonDict) -> Instance:
        texts: List[str]
        if not isinstance(json_dict, dict):
            raise ValueError(f"expected a JSON object, got {json.dumps(json_dict)[:80]}")
        if "sentence" in json_dict:
            texts = [json_dict["sentence"]]
        elif "sentence1" in json_dict and "sentence2" in json_dict:
            texts = [json_dict["sentence1"], json_dict["sentence2"]]
        else:
            raise ValueError(
                f"expected {{'sentence': ...}} or {{'sentence1': ..., 'sentence2': ...}}, got the "
                f"keys {sorted(json_dict)}"
            )
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

    def predict_instance(self, instance: Instance) -> JsonDict:
        return self._with_labels(super().predict_instance(instance))

    def predict_batch_instance(self, instances: List[Instance]) -> List[JsonDict]:
        return [self._with_labels(output) for output in super().predict_batch_instance(instances)]

    def _with_labels(self, output: Dict[str, Any]) -> Dict[str, Any]:
        """`class_probabilities` (label -> probability) where the model gives only `probs`."""
        if "class_probabilities" not in output and "probs" in output:
            namespace = getattr(self._model, "_label_namespace", "labels")
            names = self._model.vocab.get_index_to_token_vocabulary(namespace)
            output["class_probabilities"] = {names[i]: p for i, p in enumerate(output["probs"])}
        return output


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
