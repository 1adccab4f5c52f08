from typing import Dict, List, Optional, Tuple

from allennlp.data import Vocabulary
from allennlp.data.fields import TextField
from allennlp.data.fields.text_field import TextFieldTensors

from allennlp_lpt.core.cache import RowKeys, instance_key


class CacheKeyedTextField(TextField):
    """
    A `TextField` whose tensors also carry, for each indexer that produces `token_ids`, the
    instance's lower-layer cache key and length (`row_keys`, a `RowKeys`), computed on the host
    once per instance. Batched, `row_keys` lists the rows in order; AllenNLP moves tensors to
    the GPU and leaves it on the host, so a `late_prompt_transformer` embedder with `cache: true`
    finds each row's stored states without reading the batch back from the device.

    `label`, the instance's label where it has one, travels with the keys: a model that appends
    each row's gold answer (the causal `late_prompt_classifier` in training) keys those longer
    rows on the host too.

    The readers' `cache_keys: true` makes their text fields this one. Only a
    `late_prompt_transformer` embedder accepts `row_keys`: other embedders fail on it.
    """

    __slots__ = ["_row_keys", "label"]

    def __init__(self, *args, label: Optional[str] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.label = label
        self._row_keys: Optional[Dict[str, Tuple[str, int]]] = None

    def index(self, vocab: Vocabulary) -> None:
        super().index(vocab)
        self._row_keys = None

    def _keys(self) -> Dict[str, Tuple[str, int]]:
        if self._row_keys is None:
            assert self._indexed_tokens is not None, "index() the field first"
            self._row_keys = {
                name: (instance_key(indexed["token_ids"], indexed.get("type_ids")), len(indexed["token_ids"]))
                for name, indexed in self._indexed_tokens.items()
                if "token_ids" in indexed
            }
        return self._row_keys

    def duplicate(self) -> "CacheKeyedTextField":
        # TextField's copy is a plain TextField; keep the kind (the keys follow the tokens).
        plain = super().duplicate()
        new = CacheKeyedTextField(plain.tokens, plain._token_indexers, label=self.label)
        new._indexed_tokens = plain._indexed_tokens
        return new

    def as_tensor(self, padding_lengths: Dict[str, int]) -> TextFieldTensors:
        tensors = super().as_tensor(padding_lengths)
        for name, (key, length) in self._keys().items():
            tensors[name]["row_keys"] = RowKeys((key,), (length,), (self.label,))  # type: ignore[assignment]
        return tensors

    def batch_tensors(self, tensor_list: List[TextFieldTensors]) -> TextFieldTensors:
        rows: Dict[str, List[RowKeys]] = {}
        plain: List[TextFieldTensors] = []
        for tensors in tensor_list:
            plain.append({})
            for name, outputs in tensors.items():
                if "row_keys" in outputs:
                    rows.setdefault(name, []).append(outputs["row_keys"])  # type: ignore[arg-type]
                plain[-1][name] = {k: v for k, v in outputs.items() if k != "row_keys"}
        batched = super().batch_tensors(plain)
        for name, keyed in rows.items():
            batched[name]["row_keys"] = RowKeys(  # type: ignore[assignment]
                tuple(key for one in keyed for key in one.keys),
                tuple(length for one in keyed for length in one.lengths),
                tuple(label for one in keyed for label in (one.labels or (None,) * len(one.keys))),
            )
        return batched
