from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder
from transformers import PreTrainedModel

from allennlp_lpt.core.backbone import Backbone, get_backbone, parse_backbone_dtype, shared_copy
from allennlp_lpt.core.pretrained import PretrainedPart
from allennlp_lpt.core.whole_models import give_lean_modules
from allennlp_lpt.modules.pairing import registered_name


class TunedTransformer(PretrainedPart):
    """The tuned base transformer: frozen weights shared with the process's backbone
    (`core.backbone`), the method's weights its own."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model


class WholeTransformerEmbedder(TokenEmbedder):
    """
    What the token embedders that run a whole frozen pretrained transformer with a tuning
    method share (`peft_transformer`, `reft_transformer`): the process's shared backbone (one
    load per model, as for late prompt) in a module copy of the embedder's own with the lean
    attention and dropout of late prompt's layers, the checks of the input, and the final
    states as output, one per input token. `late_prompt_classifier` reads its LM head from the
    same backbone (`backbone`).

    A subclass's constructor calls `_load` for the model, applies its method to it, and hands
    the model to run to `_hold`.
    """

    # Positions the method puts before the input (prompt tuning's soft prompt), dropped from
    # the output; positions it takes before the tokens (a prompt, a prefix), which the input
    # cannot use.
    _virtual_tokens: int = 0
    _positions_taken: int = 0

    def _load(self, model_name: str, backbone_dtype: str) -> PreTrainedModel:
        """The backbone's model with its head (`family.load_model`), as a module copy of this
        embedder's own over the shared weights with the lean modules in it: the method's
        modules go into it, never into what other models read."""
        backbone = get_backbone(model_name, dtype=parse_backbone_dtype(backbone_dtype), key="model_name")
        self.model_name = model_name
        self.family = backbone.family
        self.config = backbone.config
        self._hidden_size = backbone.hidden_size
        # Not a submodule: the backbone this embedder's frozen weights are, for the verbalizer's
        # LM head (`backbone`). Held until those weights are converted into copies (`_apply`).
        self._backbone: Optional[Backbone] = backbone
        self._pass_type_ids = not backbone.family.is_causal
        whole = shared_copy(backbone.model)
        give_lean_modules(whole)
        return whole

    def _hold(self, model: torch.nn.Module, *, save_backbone: bool) -> None:
        """Runs `model` (the tuned base transformer) from now on."""
        self.transformer = TunedTransformer(model)
        self.transformer.save_weights = save_backbone
        self._max_positions = self.family.max_positions(self.config) - self._positions_taken
        self._shared_ids = {id(p) for p in model.parameters() if not p.requires_grad}

    def get_output_dim(self) -> int:
        return self._hidden_size

    @property
    def backbone(self) -> Backbone:
        """The shared backbone (`core.backbone`) whose weights this embedder's frozen ones are,
        in `backbone_dtype`: `late_prompt_classifier` takes its LM head from it rather than
        loading the model again."""
        if self._backbone is None:
            raise RuntimeError(
                f"this {registered_name(self)} of {self.model_name!r} no longer reads the shared "
                f"backbone: its weights were converted (.cuda(), .to(), .half()) into copies of "
                f"its own."
            )
        return self._backbone

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def,override]
        result = super()._apply(fn, recurse)
        # Once none of the shared weights are ours any more (e.g. after .cuda()), let the
        # shared CPU copy go when no other model reads it.
        if self._backbone is not None and not any(id(p) in self._shared_ids for p in self.parameters()):
            self._backbone = None
        return result

    def forward(  # type: ignore
        self,
        token_ids: torch.LongTensor,
        mask: torch.BoolTensor,
        type_ids: Optional[torch.LongTensor] = None,
        row_keys: Optional[object] = None,
    ) -> torch.Tensor:
        """
        # Parameters

        token_ids : `torch.LongTensor`, shape `(batch_size, seq_len)`
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        type_ids : `torch.LongTensor`, optional, shape `(batch_size, seq_len)`
            Passed to BERT-like models, except with PEFT's prompt methods (PEFT drops them).

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`: the final states of the
        tokens (a soft prompt's positions are dropped).
        """
        if row_keys is not None:
            raise ConfigurationError(
                f"{registered_name(self)}: the batch carries cache keys (the reader's cache_keys: true), "
                f"but only late_prompt_transformer caches states; remove cache_keys from the "
                f"dataset reader."
            )
        if token_ids.size(1) > self._max_positions:
            name = registered_name(self)
            beside = (f" beside the method's {self._positions_taken} virtual tokens, which take positions "
                      f"before the input" if self._positions_taken else "")
            raise ValueError(
                f"{name}: inputs of {token_ids.size(1)} tokens, but {self.model_name!r} "
                f"has positions for {self._max_positions}{beside}; lower dataset_reader.max_length "
                f"to {self._max_positions} or less"
                + (f" (or {name}.method.num_virtual_tokens)." if self._positions_taken else ".")
            )
        inputs = {"input_ids": token_ids, "attention_mask": mask.long()}
        if self._pass_type_ids and type_ids is not None:
            inputs["token_type_ids"] = type_ids
        states = self.transformer.model(**inputs).last_hidden_state
        return states[:, self._virtual_tokens:]
