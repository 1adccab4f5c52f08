import logging

from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from allennlp_lpt.modules.token_embedders.whole_transformer import WholeTransformerEmbedder
from allennlp_lpt.modules.tuning_methods import TuningMethod
from allennlp_lpt.option_types import TypedOptions

logger = logging.getLogger(__name__)


@TokenEmbedder.register("reft_transformer")
class ReftTransformerEmbedder(TypedOptions, WholeTransformerEmbedder):
    """
    A frozen pretrained transformer whose hidden states a representation fine-tuning method
    (LoReFT) edits at chosen layers and positions, as an AllenNLP token embedder that drops in
    where `pretrained_transformer`, `peft_transformer` or `late_prompt_transformer` is. Its
    output is the final hidden states, one per input token, for any `Seq2VecEncoder` (pooling)
    or for `late_prompt_classifier`'s verbalizer.

    The model runs its own forward with the edits hooked onto its layers
    (`core.interventions.LayerEdits`); only the edits train. The frozen weights are the
    process's shared backbone, run with the same attention kernel and dropout as late prompt's
    layers, and `late_prompt_classifier` reads its LM head from that same backbone.

    Registered as a `TokenEmbedder` with name "reft_transformer". Use it with a
    `pretrained_transformer` indexer (or the `lpt_*` readers) of the same model.

    # Parameters

    model_name : `str`
        A HuggingFace model folder or hub name of a supported family (BERT-like encoders,
        GPT-2, Llama-family decoders).
    method : `TuningMethod`
        `{"type": "loreft", ...}` (`allennlp_lpt/modules/tuning_methods/loreft.py`).
    backbone_dtype : `str`, optional (default = `"float32"`)
        The dtype the frozen weights are stored in (`"float32"`, `"bfloat16"`, `"float16"`);
        the edits' weights stay float32.
    save_backbone : `bool`, optional (default = `True`)
        `False` leaves the frozen weights out of archives and checkpoints, which then hold only
        the edits (and the head): loading rebuilds the rest from `model_name`.
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
        if not callable(getattr(method, "layer_edits", None)):
            editing = [n for n in TuningMethod.list_available()
                       if callable(getattr(TuningMethod.by_name(n), "layer_edits", None))]
            raise ConfigurationError(
                f"reft_transformer.method: {method.name()!r} does not edit hidden states; it is carried "
                f"by {method.component}. reft_transformer takes {', '.join(sorted(editing))}."
            )
        whole = self._load(model_name, backbone_dtype)
        whole.config.use_cache = False  # this copy's own config: no key/value cache is read here
        self.method = method
        self.edits = method.layer_edits(self.config, self.family, model_name)  # type: ignore[attr-defined]
        self.edits.attach(whole, self.family)
        self._hold(whole.base_model, save_backbone=save_backbone)
        trainable = sum(p.numel() for p in self.edits.parameters())
        logger.info("reft_transformer: %s on %s, %d trainable parameters", method.describe(), model_name, trainable)
