import logging
from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from allennlp_lpt.core.backbone import get_backbone, parse_backbone_dtype, shared_copy
from allennlp_lpt.core.pretrained import PretrainedPart
from allennlp_lpt.core.whole_models import give_lean_modules, prefix_as_cache
from allennlp_lpt.modules.tuning_methods import TuningMethod
from allennlp_lpt.modules.tuning_methods.tuning_method import import_peft

logger = logging.getLogger(__name__)


class _PeftPart(PretrainedPart):
    """The PEFT-wrapped base transformer: frozen weights shared with the process's backbone
    (`core.backbone`), the method's weights its own."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model


@TokenEmbedder.register("peft_transformer")
class PeftTransformerEmbedder(TokenEmbedder):
    """
    A frozen pretrained transformer tuned by a parameter-efficient method built on PEFT (LoRA,
    (IA)^3, prompt tuning, prefix tuning): the baselines late prompt tuning is compared with,
    as an AllenNLP token embedder that drops in where `pretrained_transformer` or
    `late_prompt_transformer` is. Its output is the final hidden states, one per input token,
    for any `Seq2VecEncoder` (pooling) or for `late_prompt_classifier`'s verbalizer.

    Only the method's weights train; the frozen weights are the process's shared backbone (one
    load per model, as for late prompt), run with the same attention kernel and dropout as
    late prompt's layers.

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
        if peft_config.peft_type == peft.PeftType.PREFIX_TUNING and not backbone.family.lean_attention_fits_hf_layers:
            prefix_as_cache(base)
        peft_model = peft.get_peft_model(base, peft_config)
        for parameter in peft_model.parameters():  # what trains is float32, as late prompt's generator
            if parameter.requires_grad and parameter.dtype != torch.float32:
                parameter.data = parameter.data.float()
        self.transformer = _PeftPart(peft_model)
        self.transformer.save_weights = save_backbone
        self._virtual_tokens = method.virtual_tokens
        self._pass_type_ids = not backbone.family.is_causal and not peft_config.is_prompt_learning
        self._hidden_size = backbone.hidden_size
        self._max_positions = backbone.family.max_positions(backbone.config) - method.virtual_tokens
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        logger.info("peft_transformer: %s on %s, %d trainable parameters", method.describe(), model_name, trainable)

    def get_output_dim(self) -> int:
        return self._hidden_size

    @property
    def peft_model(self) -> torch.nn.Module:
        """The PEFT model (`peft.PeftModel`) this embedder runs."""
        return self.transformer.model

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
                f"{self._virtual_tokens} virtual tokens; lower dataset_reader.max_length."
            )
        inputs = {"input_ids": token_ids, "attention_mask": mask.long()}
        if self._pass_type_ids and type_ids is not None:
            inputs["token_type_ids"] = type_ids
        states = self.peft_model(**inputs).last_hidden_state
        return states[:, self._virtual_tokens:]

