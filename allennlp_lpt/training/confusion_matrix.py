"""
Writes a classifier's confusion matrix as `confusion_matrix.csv` (rows gold, columns predicted)
and a plot, `confusion_matrix.png`:

- at the end of `allennlp train`, beside `metrics.json`, for the best epoch on the validation
  data (the `lpt_confusion_matrix` trainer callback, which the shipped configs add);
- in `allennlp evaluate`, beside `--output-file` (`dev.json` -> `dev_confusion_matrix.csv` and
  `.png`), by the `lpt_confusion_matrix` evaluator, which the shipped configs name under
  `evaluation` (for other archives: `-o '{"evaluation": {"type": "lpt_confusion_matrix"}}'`).

The counts come from the model: a model with a `confusion_matrix()` method returning a
`Confusion` (`lpt_basic_classifier`, `late_prompt_classifier`) keeps them for the last finished
pass over a dataset. Rows and columns follow the reader's declared `labels` where it has them,
else the model's label vocabulary.
"""
import csv
import logging
import os
from os import PathLike
from typing import Any, Dict, Optional, Union

import torch
from allennlp.data import DataLoader
from allennlp.evaluation import Evaluator
from allennlp.evaluation.evaluator import SimpleEvaluator
from allennlp.models import Model
from allennlp.training.callbacks.callback import TrainerCallback

from allennlp_lpt.models.label_metrics import Confusion

logger = logging.getLogger(__name__)

CSV_NAME = "confusion_matrix.csv"
PNG_NAME = "confusion_matrix.png"


def model_confusion(model: torch.nn.Module) -> Optional[Confusion]:
    """The model's counts of its last finished pass, or None where it keeps none."""
    getter = getattr(model, "confusion_matrix", None)
    return getter() if callable(getter) else None


def keeps_confusion(model: torch.nn.Module) -> bool:
    return callable(getattr(model, "confusion_matrix", None))


def _no_counts_message(model: torch.nn.Module, key: str) -> str:
    return (
        f"{key}: the model ({type(model).__name__}) keeps no confusion counts, so no confusion "
        f"matrix is written. Use model type lpt_basic_classifier in place of basic_classifier "
        f"(the same weights), or late_prompt_classifier."
    )


def _reader_attribute(data_loader: Any, name: str) -> Any:
    return getattr(getattr(data_loader, "reader", None), name, None)


def write_confusion_matrix(
    confusion: Confusion,
    csv_path: str,
    png_path: str,
    *,
    title: str,
    label_names: Optional[Dict[str, str]] = None,
) -> None:
    """
    Writes `confusion` as a CSV file (a header `gold \\ predicted,L1,L2,...`, then one row per
    gold label: the label and its counts) and as a PNG plot, each cell annotated with its count.

    # Parameters

    confusion : `Confusion`
    csv_path : `str`
    png_path : `str`
    title : `str`
        The plot's title.
    label_names : `Dict[str, str]`, optional
        Label -> what it means (the reader's `label_names`), shown beside the labels on the plot.
    """
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["gold \\ predicted", *confusion.labels])
        for label, row in zip(confusion.labels, confusion.counts):
            writer.writerow([label, *row])
    _plot(confusion, png_path, title, label_names or {})
    logger.info("Confusion matrix (rows gold, columns predicted): %s, %s", csv_path, png_path)


def _plot(confusion: Confusion, path: str, title: str, label_names: Dict[str, str]) -> None:
    # The object-oriented API with its own Agg canvas: no pyplot, no process-wide backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    n = len(confusion.labels)
    ticks = [
        f"{label} ({label_names[label]})" if label in label_names else label for label in confusion.labels
    ]
    side = min(4.0 + 0.5 * n, 30.0)
    figure = Figure(figsize=(side + 1.5, side))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(confusion.counts, cmap="Blues", vmin=0, interpolation="nearest")
    colorbar = figure.colorbar(image, ax=axes)
    colorbar.locator = MaxNLocator(integer=True)  # counts: whole numbers on the scale
    colorbar.update_ticks()
    if max(len(tick) for tick in ticks) > 3:  # longer labels slant so that they do not overlap
        axes.set_xticks(range(n), ticks, rotation=45, ha="right", rotation_mode="anchor")
    else:
        axes.set_xticks(range(n), ticks)
    axes.set_yticks(range(n), ticks)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    axes.set_title(title)
    if n <= 30:  # beyond that the numbers no longer fit their cells
        highest = max((max(row) for row in confusion.counts), default=0)
        for i, row in enumerate(confusion.counts):
            for j, count in enumerate(row):
                axes.text(j, i, str(count), ha="center", va="center",
                          color="white" if highest and count > highest / 2 else "black")
    figure.savefig(path, dpi=120, bbox_inches="tight")  # long labels are not clipped


@TrainerCallback.register("lpt_confusion_matrix")
class ConfusionMatrixCallback(TrainerCallback):
    """
    At the end of training, writes the confusion matrix of the best epoch on the validation
    data (the epoch whose weights the trainer keeps, by `validation_metric`) beside
    `metrics.json`: `confusion_matrix.csv` (rows gold, columns predicted, in the reader's
    `labels` order where it declares them) and `confusion_matrix.png`. The counts are the ones
    the model counted during that validation (its `confusion_matrix()`), kept in checkpoints, so
    a run resumed with `--recover` writes the same. A run without validation data, or whose
    model keeps no counts (AllenNLP's `basic_classifier`), writes none and says so in the log.
    The shipped configs add it.

    Registered as a `TrainerCallback` with name "lpt_confusion_matrix".
    """

    def __init__(self, serialization_dir: str) -> None:
        super().__init__(serialization_dir)
        self._best: Optional[Confusion] = None
        self._best_epoch: Optional[int] = None

    def on_start(self, trainer: Any, is_primary: bool = True, **kwargs: Any) -> None:
        if is_primary and not keeps_confusion(trainer.model):
            logger.warning(_no_counts_message(trainer.model, "trainer.callbacks lpt_confusion_matrix"))

    def on_epoch(self, trainer: Any, metrics: Dict[str, Any], epoch: int, is_primary: bool = True,
                 **kwargs: Any) -> None:
        # `best_epoch` is this epoch only where it was validated and is the best so far; the
        # model's last finished pass is then this validation.
        if metrics.get("best_epoch") == epoch:
            confusion = model_confusion(trainer.model)
            if confusion is not None:
                self._best, self._best_epoch = confusion, epoch

    def on_end(self, trainer: Any, metrics: Optional[Dict[str, Any]] = None, epoch: Optional[int] = None,
               is_primary: bool = True, **kwargs: Any) -> None:
        if not is_primary or metrics is None or not keeps_confusion(trainer.model):
            return  # a failed run writes nothing; a model without counts was reported at the start
        if self._best is None:
            logger.warning("lpt_confusion_matrix: no epoch was validated (no validation_data_path?), "
                           "so no confusion matrix is written.")
            return
        confusion = self._best.in_order(_reader_attribute(trainer.data_loader, "labels"))
        write_confusion_matrix(
            confusion,
            os.path.join(self.serialization_dir, CSV_NAME),
            os.path.join(self.serialization_dir, PNG_NAME),
            title=f"validation data, best epoch ({self._best_epoch})",
            label_names=_reader_attribute(trainer.data_loader, "label_names"),
        )

    def state_dict(self) -> Dict[str, Any]:
        if self._best is None:
            return {}
        return {"epoch": self._best_epoch, **self._best.as_state()}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if state_dict:
            self._best, self._best_epoch = Confusion.from_state(state_dict), state_dict["epoch"]


@Evaluator.register("lpt_confusion_matrix")
class ConfusionMatrixEvaluator(SimpleEvaluator):
    """
    AllenNLP's `simple` evaluator (the default of `allennlp evaluate`), which then writes the
    model's confusion matrix beside the metrics file: `--output-file runs/x/dev.json` gives
    `runs/x/dev_confusion_matrix.csv` (rows gold, columns predicted, in the reader's `labels`
    order where it declares them) and `runs/x/dev_confusion_matrix.png`. Without
    `--output-file` nothing more is written. The shipped configs name it as their `evaluation`,
    which archives keep; for an archive of another config add
    `-o '{"evaluation": {"type": "lpt_confusion_matrix"}}'` to `allennlp evaluate`.

    Registered as an `Evaluator` with name "lpt_confusion_matrix"; its parameters are
    `simple`'s.
    """

    def __call__(  # type: ignore[override]
        self,
        model: Model,
        data_loader: DataLoader,
        batch_weight_key: Optional[str] = None,
        metrics_output_file: Optional[Union[str, PathLike]] = None,
        predictions_output_file: Optional[Union[str, PathLike]] = None,
    ) -> Dict[str, Any]:
        metrics = super().__call__(
            model, data_loader, batch_weight_key,
            metrics_output_file=metrics_output_file, predictions_output_file=predictions_output_file,
        )
        if metrics_output_file is None:
            return metrics
        if not keeps_confusion(model):
            logger.warning(_no_counts_message(model, "evaluation lpt_confusion_matrix"))
            return metrics
        confusion = model_confusion(model)
        if confusion is None:  # the data gave no labelled instance
            logger.warning("lpt_confusion_matrix: no labelled instance was evaluated, so no confusion "
                           "matrix is written.")
            return metrics
        stem = os.path.splitext(str(metrics_output_file))[0]
        write_confusion_matrix(
            confusion.in_order(_reader_attribute(data_loader, "labels")),
            f"{stem}_{CSV_NAME}",
            f"{stem}_{PNG_NAME}",
            title=os.path.basename(str(metrics_output_file)),
            label_names=_reader_attribute(data_loader, "label_names"),
        )
        return metrics

    def _to_params(self) -> Dict[str, Any]:
        return dict(super()._to_params(), type="lpt_confusion_matrix")
