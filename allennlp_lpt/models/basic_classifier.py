from typing import Any, Dict, Optional

import torch
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models.basic_classifier import BasicClassifier
from allennlp.models.model import Model
from allennlp.modules import FeedForward, Seq2SeqEncoder, Seq2VecEncoder, TextFieldEmbedder
from allennlp.nn import InitializerApplicator

from allennlp_lpt.models.label_metrics import Confusion, LabelMetrics
from allennlp_lpt.option_types import TypedOptions


@Model.register("lpt_basic_classifier")
class LptBasicClassifier(TypedOptions, BasicClassifier):
    """
    AllenNLP's `basic_classifier` (an embedder, a pooling `seq2vec_encoder`, a linear head) with
    the package's metrics: beside `accuracy`, `macro_f1` and each label's precision, recall and
    F1 (`precision_label=L`, `recall_label=L`, `f1_label=L`), and the confusion counts of the
    last pass over a dataset (`confusion_matrix()`), which `lpt_confusion_matrix` writes. The
    quickstarts and the baseline use it; its weights and outputs are `basic_classifier`'s, so an
    archive of either type loads as the other (`-o '{"model.type": "lpt_basic_classifier"}'`).
    Predicts with `lpt_classifier` by default.

    Registered as a `Model` with name "lpt_basic_classifier".

    # Parameters

    `basic_classifier`'s: `vocab`, `text_field_embedder`, `seq2vec_encoder` (pools
    `(batch_size, seq_len, dim)` states into `(batch_size, dim)`), `seq2seq_encoder`,
    `feedforward`, `dropout`, `num_labels` (default: the label namespace's size),
    `label_namespace` (default `"labels"`), `namespace` (default `"tokens"`; the quickstarts'
    `"tags"`), `initializer`.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        seq2vec_encoder: Seq2VecEncoder,
        seq2seq_encoder: Optional[Seq2SeqEncoder] = None,
        feedforward: Optional[FeedForward] = None,
        dropout: Optional[float] = None,
        num_labels: Optional[int] = None,
        label_namespace: str = "labels",
        namespace: str = "tokens",
        initializer: InitializerApplicator = InitializerApplicator(),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            vocab, text_field_embedder, seq2vec_encoder, seq2seq_encoder, feedforward, dropout,
            num_labels, label_namespace, namespace, initializer, **kwargs,
        )
        self._label_metrics = LabelMetrics(vocab, self._label_namespace, self._num_labels)

    def forward(  # type: ignore[override]
        self,
        tokens: TextFieldTensors,
        label: Optional[torch.IntTensor] = None,
        metadata: Any = None,
    ) -> Dict[str, torch.Tensor]:
        """
        `basic_classifier`'s forward pass; with `label`, `(batch_size,)`, it also counts the
        predictions for the metrics. Returns `logits` and `probs`, `(batch_size, num_labels)`,
        `token_ids`, and `loss` with labels.
        """
        output = super().forward(tokens, label, metadata)
        if label is not None:
            self._label_metrics(output["logits"], label)
        return output

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        metrics = super().get_metrics(reset)
        metrics.update(self._label_metrics.get_metrics(reset))
        return metrics

    def confusion_matrix(self) -> Optional[Confusion]:
        """The confusion counts of the last finished pass over a dataset (the last
        `get_metrics(reset=True)`), in the label vocabulary's order; None before any."""
        return self._label_metrics.last_confusion

    default_predictor = "lpt_classifier"
