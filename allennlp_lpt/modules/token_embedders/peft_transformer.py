import logging
from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from allennlp_lpt.core.backbone import Backbone, get_backbone, parse_backbone_dtype, shared_copy
from allennlp_lpt.core.pretrained import PretrainedPart
from allennlp_lpt.core.whole_models import give_lean_modules
from allennlp_lpt.modules.tuning_methods import PeftMethod, TuningMethod
from allennlp_lpt.modules.tuning_methods.tuning_method import import_peft
from allennlp_lpt.option_types import TypedOptions

logger = logging.getLogger(__name__)


class _PeftPart(PretrainedPart):
    """The PEFT-wrapped base transformer: frozen weights shared with the process's backbone
    (`core.backbone`), the method's weights its own."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model


@TokenEmbedder.register("peft_transformer")
class PeftTransformerEmbedder(TypedOptions, TokenEmbedder):
    """
    A frozen pretrained transformer tuned by a parameter-efficient method built on PEFT (LoRA,
    (IA)^3, prompt tuning, prefix tuning): the baselines late prompt tuning is compared with,
    as an AllenNLP token embedder that drops in where `pretrained_transformer` or
    `late_prompt_transformer` is. Its output is the final hidden states, one per input token,
    for any `Seq2VecEncoder` (pooling) or for `late_prompt_classifier`'s verbalizer.

    Only the method's weights train; the frozen weights are the process's shared backbone (one
    load per model, as for late prompt), run with the same attention kernel and dropout as
    late prompt's layers. `late_prompt_classifier` reads its LM head from that same backbone.

    Prompt tuning's soft prompt and prefix tuning's keys and values both take positions: the
    prompt sits before the tokens, and with a prefix the tokens' positions start after it
    (PEFT hands it over as past keys and values). An input may therefore have at most the
    model's positions minus `num_virtual_tokens` tokens; a longer batch is a ValueError naming
    `dataset_reader.max_length`, raised before the model would fail inside its position
    embeddings.

    Registered as a `TokenEmbedder` with name "peft_transformer". Use it with a
    `pretrained_transformer` indexer (or the `lpt_*` readers) of the same model.

    # Parameters

    model_name : `str`
        A HuggingFace model folder or hub name of a supported family (BERT-like encoders,
        GPT-2, Llama-family decoders).
    method : `TuningMethod`
        `{"type": "lora", ...}`, `"ia3"`, `"prompt_tuning"` or `"prefix_tuning"`
        (`allennlp_lpt/modules/tuning_methods/`).
    backbone_dtype : `str`, optional (default = `"float32"`)
        The dtype the frozen weights are stored in (`"float32"`, `"bfloat16"`, `"float16"`);
        the method's weights stay float32.
    save_backbone : `bool`, optional (default = `True`)
        `False` leaves the frozen weights out of archives and checkpoints, which then hold only
        the method's weights (and the head): loading rebuilds the rest from `model_name`.
    """

    def __init__(
        self,
        model_name: str,
        method: TuningMethod,
        *,
        backbone_dtype: str = "float32",
        save_backbone: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(method, PeftMethod):
            peft_methods = [n for n in TuningMethod.list_available()
                            if issubclass(TuningMethod.by_name(n), PeftMethod)]
            raise ConfigurationError(
                f"peft_transformer.method: {method.name()!r} is not built on PEFT; it is carried by "
                f"{method.component}. peft_transformer takes {', '.join(sorted(peft_methods))}."
            )
        peft = import_peft("peft_transformer")
        backbone = get_backbone(model_name, dtype=parse_backbone_dtype(backbone_dtype), key="model_name")
        self.model_name = model_name
        self.family = backbone.family
        self.config = backbone.config
        self.method = method
        # Module copies of this embedder's own over the shared weights: the lean attention and
        # PEFT's injected layers go into them, never into what other models read.
        whole = shared_copy(backbone.model)
        give_lean_modules(whole)
        base = whole.base_model
        peft_config = method.peft_config(base, backbone.config, backbone.family, model_name)
        method.prepare(base, backbone.family)
        peft_model = peft.get_peft_model(base, peft_config)
        for parameter in peft_model.parameters():  # what trains is float32, as late prompt's generator
            if parameter.requires_grad and parameter.dtype != torch.float32:
                parameter.data = parameter.data.float()
        self.transformer = _PeftPart(peft_model)
        self.transformer.save_weights = save_backbone
        self._virtual_tokens = method.virtual_tokens
        self._pass_type_ids = not backbone.family.is_causal and not peft_config.is_prompt_learning
        self._hidden_size = backbone.hidden_size
        # Prompt and prefix tuning both move the tokens' positions back by their length (the
        # prefix as past keys and values: BERT, RoBERTa and GPT-2 then index their position
        # embeddings past the end, the rotary families run past their trained positions).
        self._positions_taken = peft_config.num_virtual_tokens if peft_config.is_prompt_learning else 0
        self._max_positions = backbone.family.max_positions(backbone.config) - self._positions_taken
        # Not a submodule: the backbone this embedder's frozen weights are, for the verbalizer's
        # LM head (`backbone`). Held until those weights are converted into copies (`_apply`).
        self._backbone: Optional[Backbone] = backbone
        self._shared_ids = {id(p) for p in peft_model.parameters() if not p.requires_grad}
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        logger.info("peft_transformer: %s on %s, %d trainable parameters", method.describe(), model_name, trainable)

    def get_output_dim(self) -> int:
        return self._hidden_size

    @property
    def peft_model(self) -> torch.nn.Module:
        """The PEFT model (`peft.PeftModel`) this embedder runs."""
        return self.transformer.model

    @property
    def backbone(self) -> Backbone:
        """The shared backbone (`core.backbone`) whose weights this embedder's frozen ones are,
        in `backbone_dtype`: `late_prompt_classifier` takes its LM head from it rather than
        loading the model again."""
        if self._backbone is None:
            raise RuntimeError(
                f"this peft_transformer of {self.model_name!r} no longer reads the shared "
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
            Passed to BERT-like models with LoRA and (IA)^3 (PEFT's prompt methods drop them).

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`: the final states of the
        tokens (a soft prompt's positions are dropped).
        """
        if row_keys is not None:
            raise ConfigurationError(
                "peft_transformer: the batch carries cache keys (the reader's cache_keys: true), "
                "but only late_prompt_transformer caches states; remove cache_keys from the "
                "dataset reader."
            )
        if token_ids.size(1) > self._max_positions:
            raise ValueError(
                f"peft_transformer: inputs of {token_ids.size(1)} tokens, but {self.model_name!r} "
                f"has positions for {self._max_positions} beside the method's "
                f"{self._positions_taken} virtual tokens, which take positions before the input; "
                f"lower dataset_reader.max_length to {self._max_positions} or less (or "
                f"peft_transformer.method.num_virtual_tokens)."
            )
        inputs = {"input_ids": token_ids, "attention_mask": mask.long()}
        if self._pass_type_ids and type_ids is not None:
            inputs["token_type_ids"] = type_ids
        states = self.peft_model(**inputs).last_hidden_state
        return states[:, self._virtual_tokens:]

