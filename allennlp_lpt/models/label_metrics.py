"""
What the package's classifiers (`lpt_basic_classifier`, `late_prompt_classifier`) report beside
accuracy: macro-F1 and each label's precision, recall and F1 (AllenNLP's `FBetaMeasure`), named
by the label, and the confusion counts of the last pass over a dataset, which the
`lpt_confusion_matrix` callback and evaluator (`allennlp_lpt.training.confusion_matrix`) write.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from allennlp.data import Vocabulary
from allennlp.nn.util import dist_reduce_sum
from allennlp.training.metrics import FBetaMeasure
from allennlp.training.metrics.metric import Metric


@dataclass(frozen=True)
class Confusion:
    """
    The confusion counts of one pass over a dataset: `counts[i][j]` instances of the gold label
    `labels[i]` were predicted as `labels[j]` (rows gold, columns predicted).
    """

    labels: Tuple[str, ...]
    counts: Tuple[Tuple[int, ...], ...]

    def in_order(self, labels: Optional[Sequence[str]]) -> "Confusion":
        """
        The same counts with rows and columns in the order of `labels` (a reader's declared
        label set); None keeps the model's order. A declared label the model does not have (no
        training row carried it) gets a row and a column of zeros; a label of the model that
        `labels` lacks goes after them, so that no count is dropped.
        """
        if labels is None:
            return self
        order = list(dict.fromkeys(str(label) for label in labels))
        order += [label for label in self.labels if label not in order]
        index = {label: i for i, label in enumerate(self.labels)}

        def count(gold: str, predicted: str) -> int:
            if gold not in index or predicted not in index:
                return 0
            return self.counts[index[gold]][index[predicted]]

        return Confusion(
            tuple(order), tuple(tuple(count(gold, predicted) for predicted in order) for gold in order)
        )

    def as_state(self) -> Dict[str, list]:
        """Plain lists, for a checkpoint that `torch.load(weights_only=True)` reads."""
        return {"labels": list(self.labels), "counts": [list(row) for row in self.counts]}

    @classmethod
    def from_state(cls, state: Dict[str, list]) -> "Confusion":
        return cls(tuple(state["labels"]), tuple(tuple(int(c) for c in row) for row in state["counts"]))


class ConfusionMatrix(Metric):
    """
    Counts (gold, predicted) pairs of a classifier, predicted being the argmax of the logits.
    The counts stay on the logits' device (`index_add_`, no read-back per batch) and are summed
    across workers under DDP, as AllenNLP's metrics are.

    # Parameters

    num_classes : `int`
    """

    supports_distributed = True

    def __init__(self, num_classes: int) -> None:
        self._num_classes = num_classes
        self._counts: Optional[torch.Tensor] = None

    def __call__(
        self,
        predictions: torch.Tensor,
        gold_labels: torch.Tensor,
        mask: Optional[torch.BoolTensor] = None,
    ) -> None:
        """
        # Parameters

        predictions : `torch.Tensor`, shape `(batch_size, ..., num_classes)`
        gold_labels : `torch.Tensor`, shape `(batch_size, ...)`
        mask : `torch.BoolTensor`, optional, the shape of `gold_labels`
        """
        predictions, gold_labels, mask = self.detach_tensors(predictions, gold_labels, mask)
        n = self._num_classes
        cells = gold_labels.reshape(-1).long() * n + predictions.argmax(dim=-1).reshape(-1)
        weights = torch.ones_like(cells) if mask is None else mask.reshape(-1).long()
        batch = torch.zeros(n * n, dtype=torch.long, device=cells.device).index_add_(0, cells, weights)
        batch = dist_reduce_sum(batch.view(n, n))
        self._counts = batch if self._counts is None else self._counts + batch

    @property
    def counted(self) -> bool:
        """Whether any batch was counted since the last reset."""
        return self._counts is not None

    def get_metric(self, reset: bool = False) -> torch.Tensor:
        """The counts, `(num_classes, num_classes)` on the CPU, rows gold, columns predicted."""
        if self._counts is None:
            counts = torch.zeros(self._num_classes, self._num_classes, dtype=torch.long)
        else:
            counts = self._counts.cpu()
        if reset:
            self.reset()
        return counts

    def reset(self) -> None:
        self._counts = None


class LabelMetrics:
    """
    Macro-F1, each label's precision, recall and F1 (AllenNLP's `FBetaMeasure`), and the
    confusion counts of a classifier over the labels of `namespace`.

    `get_metrics(reset=True)`, which AllenNLP calls at the end of every pass over a dataset (a
    training epoch, a validation, `allennlp evaluate`), returns `macro_f1` and, per label,
    `precision_label=L`, `recall_label=L`, `f1_label=L`; it also keeps the pass's counts as
    `last_confusion`. Mid-pass (`reset=False`, the progress bar) only `macro_f1`, so that the bar
    stays readable with many labels. A pass that counted nothing (a causal
    `late_prompt_classifier` scores no candidates while it trains) reports none of them.

    # Parameters

    vocab : `Vocabulary`
    namespace : `str`
        The label namespace.
    num_labels : `int`, optional (default = the namespace's size)
    """

    def __init__(self, vocab: Vocabulary, namespace: str, num_labels: Optional[int] = None) -> None:
        names = vocab.get_index_to_token_vocabulary(namespace)
        size = vocab.get_vocab_size(namespace) if num_labels is None else num_labels
        # A `num_labels` beyond the vocabulary names its extra classes by their index.
        self.labels: List[str] = [str(names.get(i, i)) for i in range(size)]
        self._fbeta = FBetaMeasure()
        self._confusion = ConfusionMatrix(size)
        self.last_confusion: Optional[Confusion] = None

    def __call__(self, logits: torch.Tensor, label: torch.Tensor) -> None:
        """
        # Parameters

        logits : `torch.Tensor`, shape `(batch_size, num_labels)`
        label : `torch.Tensor`, shape `(batch_size,)`
        """
        # Probabilities, not logits: FBetaMeasure counts a row whose scores sum to 0 as no
        # prediction at all, and the predicted label is the argmax of the probabilities, as
        # the models' outputs (`label`) name it.
        probs = torch.softmax(logits.detach().float(), dim=-1)
        self._fbeta(probs, label)
        self._confusion(probs, label)

    @property
    def counted(self) -> bool:
        """Whether any batch was counted since the last reset."""
        return self._confusion.counted

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        if not self._confusion.counted:
            if reset:
                self.last_confusion = None
            return {}
        scores = self._fbeta.get_metric(reset)
        metrics = {"macro_f1": sum(scores["fscore"]) / len(scores["fscore"])}
        counts = self._confusion.get_metric(reset)
        if reset:
            for name, precision, recall, f1 in zip(
                self.labels, scores["precision"], scores["recall"], scores["fscore"]
            ):
                metrics[f"precision_label={name}"] = precision
                metrics[f"recall_label={name}"] = recall
                metrics[f"f1_label={name}"] = f1
            self.last_confusion = Confusion(
                tuple(self.labels), tuple(tuple(row) for row in counts.tolist())
            )
        return metrics
