"""
What one prediction says, the same wherever it is written: `allennlp predict` (JSON lines or,
with `--use-dataset-reader`, a labelled TSV file), `allennlp evaluate --predictions-output-file`
and `allennlp lpt-predict-multi`, for `late_prompt_classifier` and `basic_classifier` alike.
"""
from typing import Any, Dict, List, Optional

import torch
from allennlp.common.util import JsonDict, sanitize
from allennlp.data import DatasetReader, Instance
from allennlp.models import Model

# Outputs that describe a batch, not one input (AllenNLP's forward_on_instances keeps the loss
# of a batch of one only), or that `with_tokens` gives from the input instead (without padding).
_NOT_PER_INPUT = ("loss", "tokens", "token_ids")
# The keys a prediction is built from, in the order it lists them.
_ORDERED = ("label", "probs", "class_probabilities", "logits", "label_word")


def label_order(model: Model) -> List[str]:
    """The labels in the order of the model's `probs` and `logits`: its label vocabulary's order.
    For models trained with declared `labels` (dataset_reader.labels) that is their order;
    otherwise AllenNLP's (the most frequent label first)."""
    namespace = getattr(model, "_label_namespace", "labels")
    by_index = model.vocab.get_index_to_token_vocabulary(namespace)
    return [by_index[index] for index in range(len(by_index))]


def prediction_json(
    output: Dict[str, Any],
    instance: Instance,
    model: Model,
    reader: DatasetReader,
    *,
    given: Optional[JsonDict] = None,
    with_tokens: bool = False,
) -> JsonDict:
    """
    One input's prediction, from the model's output for it (separated from its batch). It
    depends on nothing but the input: no padding, no batch-level value.

    # Parameters

    output : `Dict[str, Any]`
        The model's `make_output_human_readable` output for this input (`probs`,
        `num_labels` long, at least).
    instance : `Instance`
        The input as the reader made it; a `SourcedInstance` gives its texts, file line and
        gold label.
    model : `Model`
    reader : `DatasetReader`
        Its `label_names` (where it has them) name the labels.
    given : `JsonDict`, optional
        The JSON input line as given, echoed as `input` (else the instance's texts).
    with_tokens : `bool`, optional (default = `False`)
        Add `tokens` and `token_ids`: the input's tokens as the model read them, without padding.

    # Returns

    `input`, `line` (a file's row), `label` and `label_name`, `gold_label` and
    `gold_label_name` (a labelled row), `probs`, `labels` (the order of `probs` and `logits`),
    `class_probabilities` (label -> probability), `logits`, `label_word` (the verbalizer), and
    any other output of the model for this input.
    """
    output = sanitize(output)
    labels = label_order(model)
    names: Dict[str, str] = getattr(reader, "label_names", None) or {}
    probs = output.get("probs")
    predicted = output.get("label")
    if predicted is None and probs is not None:
        predicted = labels[int(torch.tensor(probs).argmax())]
    line: JsonDict = {"input": given if given is not None else dict(getattr(instance, "texts", {}))}
    if getattr(instance, "line", None) is not None:
        line["line"] = instance.line  # type: ignore[attr-defined]
    line["label"] = predicted
    if predicted in names:
        line["label_name"] = names[predicted]
    if "label" in instance.fields:
        gold = instance.fields["label"].label  # type: ignore[attr-defined]
        line["gold_label"] = gold
        if gold in names:
            line["gold_label_name"] = names[gold]
    if probs is not None:
        line["probs"] = probs
        line["labels"] = labels
        line["class_probabilities"] = dict(zip(labels, probs))
    for key in _ORDERED[3:]:
        if key in output:
            line[key] = output[key]
    for key, value in output.items():
        if key not in line and key not in _ORDERED and key not in _NOT_PER_INPUT:
            line[key] = value
    if with_tokens:
        tokens = instance.fields["tokens"].tokens  # type: ignore[attr-defined]
        line["tokens"] = [token.text for token in tokens]
        line["token_ids"] = [token.text_id for token in tokens]
    return line


def separate(outputs: Dict[str, Any], batch_size: int, model: Model) -> List[Dict[str, Any]]:
    """Per-input outputs of a batch's, as `Model.forward_on_instances` separates them."""
    separated: List[Dict[str, Any]] = [{} for _ in range(batch_size)]
    for name, output in list(outputs.items()):
        if isinstance(output, torch.Tensor):
            if output.dim() == 0:
                output = output.unsqueeze(0)
            if output.size(0) != batch_size:
                model._maybe_warn_for_unseparable_batches(name)
                continue
            output = output.detach().cpu().numpy()
        elif len(output) != batch_size:
            model._maybe_warn_for_unseparable_batches(name)
            continue
        for instance_output, element in zip(separated, output):
            instance_output[name] = element
    return separated
