from typing import List, Optional

from allennlp.common.util import JsonDict
from allennlp.data import Instance
from allennlp.predictors.predictor import Predictor


@Predictor.register("lpt_classifier")
class LatePromptClassifierPredictor(Predictor):
    """
    Predicts with a `late_prompt_classifier` archive (its default predictor). Accepts JSON lines
    `{"sentence": "..."}` or, for pair tasks, `{"sentence1": "...", "sentence2": "..."}`, and
    returns `label`, `label_word` and `class_probabilities` (label -> probability) besides the
    model's logits.

    Registered as a `Predictor` with name "lpt_classifier".
    """

    def predict(self, sentence: str, sentence2: Optional[str] = None) -> JsonDict:
        if sentence2 is None:
            return self.predict_json({"sentence": sentence})
        return self.predict_json({"sentence1": sentence, "sentence2": sentence2})

    def _json_to_instance(self, json_dict: JsonDict) -> Instance:
        texts: List[str]
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
