import logging

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from allennlp_lpt.modules.token_embedders.whole_transformer import WholeTransformerEmbedder
from allennlp_lpt.modules.tuning_methods import PeftMethod, TuningMethod
from allennlp_lpt.modules.tuning_methods.tuning_method import import_peft
from allennlp_lpt.option_types import TypedOptions

logger = logging.getLogger(__name__)


@TokenEmbedder.register("peft_transformer")
class PeftTransformerEmbedder(TypedOptions, WholeTransformerEmbedder):
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
        whole = self._load(model_name, backbone_dtype)
        self.method = method
        base = whole.base_model
        peft_config = method.peft_config(base, self.config, self.family, model_name)
        method.prepare(base, self.family)
        peft_model = peft.get_peft_model(base, peft_config)
        for parameter in peft_model.parameters():  # what trains is float32, as late prompt's generator
            if parameter.requires_grad and parameter.dtype != torch.float32:
                parameter.data = parameter.data.float()
        self._virtual_tokens = method.virtual_tokens
        self._pass_type_ids = self._pass_type_ids and not peft_config.is_prompt_learning
        # Prompt and prefix tuning both move the tokens' positions back by their length (the
        # prefix as past keys and values: BERT, RoBERTa and GPT-2 then index their position
        # embeddings past the end, the rotary families run past their trained positions).
        self._positions_taken = peft_config.num_virtual_tokens if peft_config.is_prompt_learning else 0
        self._hold(peft_model, save_backbone=save_backbone)
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        logger.info("peft_transformer: %s on %s, %d trainable parameters", method.describe(), model_name, trainable)

    @property
    def peft_model(self) -> torch.nn.Module:
        """The PEFT model (`peft.PeftModel`) this embedder runs."""
        return self.transformer.model
