from typing import Dict, Sequence

from allennlp.data.fields import LabelField


class OrderedLabelField(LabelField):
    """
    A `LabelField` that makes the label vocabulary list a declared label set in its order.

    AllenNLP builds the label vocabulary by frequency, so a model's `probs` would follow how
    often each label occurs in the training data (TREC's `0, 1, 3, 5, 4, 2`), not the order a
    config lists them in, and a declared label that the training data lacks would get no output
    at all. Counted into the vocabulary, each field adds `len(order) - rank` for every label of
    `order` instead of 1 for its own: every label is counted, each a multiple of the number of
    instances, and the vocabulary (sorted by count) ranks them in `order`. Indexing and tensors
    are `LabelField`'s.

    # Parameters

    label : `str`
        This instance's label, one of `order`.
    order : `Sequence[str]`
        Every label, in the order the vocabulary (and so `probs`) should list them.
    label_namespace : `str`, optional (default = `"labels"`)
    """

    __slots__ = ["_order"]

    def __init__(self, label: str, order: Sequence[str], label_namespace: str = "labels") -> None:
        super().__init__(label, label_namespace=label_namespace)
        self._order = tuple(order)

    def count_vocab_items(self, counter: Dict[str, Dict[str, int]]) -> None:
        if self._label_id is None:
            for rank, label in enumerate(self._order):
                counter[self._label_namespace][label] += len(self._order) - rank
