"""
`allennlp evaluate --predictions-output-file` for this package's readers: one line per input
row, in the order of the file, each what `allennlp predict --use-dataset-reader` writes for it.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Union
from os import PathLike

import torch
from allennlp.common.checks import ConfigurationError, check_for_gpu
from allennlp.common.tqdm import Tqdm
from allennlp.common.util import dump_metrics
from allennlp.data import Batch, DataLoader
from allennlp.evaluation import Evaluator
from allennlp.evaluation.evaluator import SimpleEvaluator
from allennlp.models import Model
from allennlp.nn import util as nn_util

from allennlp_lpt.predictors.outputs import prediction_json, separate

# Where a data loader names no fixed batch size (e.g. a max_tokens sampler).
DEFAULT_BATCH_SIZE = 32


def _batch_size(data_loader: DataLoader) -> int:
    """The data loader's batch size, or its batch sampler's."""
    size = getattr(data_loader, "batch_size", None)
    sampler = getattr(data_loader, "batch_sampler", None)
    if size is None and sampler is not None:
        size = sampler.get_batch_size()
    return size or DEFAULT_BATCH_SIZE


@Evaluator.register("lpt")
class FileOrderEvaluator(SimpleEvaluator):
    """
    AllenNLP's `simple` evaluator, except for the predictions it writes: one JSON line per
    input row, in the order of the evaluated file (whatever the data loader's sampler, e.g. a
    bucket sampler that batches by length), each with the row's `input`, `line` and
    `gold_label`, the predicted `label` and its `label_name`, `probs` in the order `labels`
    lists, and the rest of what `allennlp predict --use-dataset-reader --predictor
    lpt_classifier` writes (`allennlp_lpt.predictors.outputs.prediction_json`). AllenNLP's
    writes one line per batch, with the batch's padded token ids.

    With a predictions file it reads the data loader's file with its reader and runs the
    batches itself (inputs of similar length together, as many as the data loader's batch size,
    32 where it names none); the metrics are the model's over every row, as the `simple`
    evaluator's (its `loss`, a mean over batches, follows these batches). Without one it is the
    `simple` evaluator.

    `allennlp evaluate` uses it for archives whose validation reader is `lpt_tsv` or `lpt_task`
    and whose config names no evaluator of its own (`allennlp_lpt.compat`); name it in a config
    with `"evaluation": {"type": "lpt"}`.

    Registered as an `Evaluator` with name "lpt".
    """

    def __call__(
        self,
        model: Model,
        data_loader: DataLoader,
        batch_weight_key: Optional[str] = None,
        metrics_output_file: Optional[Union[str, PathLike]] = None,
        predictions_output_file: Optional[Union[str, PathLike]] = None,
    ) -> Dict[str, Any]:
        if predictions_output_file is None:
            return super().__call__(model, data_loader, batch_weight_key, metrics_output_file, None)
        reader = getattr(data_loader, "reader", None)
        data_path = getattr(data_loader, "data_path", None)
        if reader is None or data_path is None:
            raise ConfigurationError(
                f"evaluation.type 'lpt' writes predictions in the order of the evaluated file, "
                f"which it reads with the data loader's reader; this data loader "
                f"({type(data_loader).__name__}) has no reader or file. Use AllenNLP's "
                f"multiprocess data loader, or the 'simple' evaluator."
            )
        check_for_gpu(self.cuda_device)
        instances = list(reader.read(data_path))
        for instance in instances:
            reader.apply_token_indexers(instance)
        # Inputs of similar length share a batch (less padding); predictions do not depend on
        # their batch, and each is written at its row's place.
        order = sorted(range(len(instances)), key=lambda i: _length(instances[i]))
        batch_size = _batch_size(data_loader)
        lines: List[str] = [""] * len(instances)
        postprocess = getattr(model, self.postprocessor_fn_name)
        total_loss, total_weight, batches_with_loss, batches = 0.0, 0.0, 0, 0
        with torch.no_grad():
            model.eval()
            for start in Tqdm.tqdm(range(0, len(order), batch_size)):
                chosen = order[start:start + batch_size]
                batch = Batch([instances[i] for i in chosen])
                batch.index_instances(model.vocab)
                output = model(**nn_util.move_to_device(batch.as_tensor_dict(), self.cuda_device))
                batches += 1
                loss = output.get("loss")
                if loss is not None:
                    weight = output[batch_weight_key].item() if batch_weight_key else 1.0
                    batches_with_loss += 1
                    total_weight += weight
                    total_loss += loss.item() * weight
                rows = separate(postprocess(output), len(chosen), model)
                for i, row in zip(chosen, rows):
                    lines[i] = json.dumps(prediction_json(row, instances[i], model, reader))
        with Path(predictions_output_file).open("w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line + "\n")
        metrics = model.get_metrics(reset=True)
        if batches_with_loss:
            if batches_with_loss != batches:
                raise RuntimeError("The model you are trying to evaluate only sometimes produced a loss!")
            metrics["loss"] = total_loss / total_weight
        if metrics_output_file is not None:
            dump_metrics(str(metrics_output_file), metrics, log=True)
        return metrics

    def _to_params(self) -> Dict[str, Any]:
        return dict(super()._to_params(), type="lpt")


def _length(instance: Any) -> int:
    tokens = instance.fields.get("tokens")
    return len(tokens) if tokens is not None else 0
