"""
The tuning methods `allennlp lpt-compare` puts side by side, each with its documented defaults,
and how a late-prompt training config becomes the same config with another method: the data,
reader, head, trainer and seeds stay; only the part of the model that trains changes.
"""
import copy
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from allennlp.common.checks import ConfigurationError

from allennlp_lpt.core.family import family_for_config, load_backbone_config


@dataclass(frozen=True)
class MethodDefaults:
    """A method's learning rate (None: the base config's) and options, and where they come from."""

    lr: Optional[float]
    options: Dict[str, Any] = field(default_factory=dict)
    source: str = ""


# training_configs/README.md tabulates these; tests/test_training_configs.py checks it agrees.
DEFAULTS: Dict[str, MethodDefaults] = {
    "late_prompt": MethodDefaults(None, {}, "the base config (late prompt tuning paper: 1e-3 for RoBERTa)"),
    "lora": MethodDefaults(5e-4, {"r": 8, "alpha": 8, "dropout": 0.1},
                           "LoRA paper (Hu et al. 2021), RoBERTa-base on GLUE: r 8, alpha 8, lr 5e-4"),
    "ia3": MethodDefaults(3e-3, {}, "(IA)^3 paper (Liu et al. 2022): lr 3e-3; PEFT's target modules"),
    "prompt_tuning": MethodDefaults(3e-2, {"num_virtual_tokens": 20},
                                    "PEFT's prompt-tuning examples (AdamW 3e-2); 20 tokens as in the benchmark"),
    "prefix_tuning": MethodDefaults(1e-2, {"num_virtual_tokens": 20},
                                    "P-tuning v2 (Liu et al. 2022): lr 5e-3 to 1e-2, prefixes of 8 to 20"),
    "bitfit": MethodDefaults(1e-3, {}, "BitFit paper (Ben Zaken et al. 2022): lr 1e-3"),
    "full": MethodDefaults(5e-5, {}, "BERT paper (Devlin et al. 2019) fine-tuning range 2e-5 to 5e-5"),
}
METHODS = tuple(DEFAULTS)
PEFT_METHODS = ("lora", "ia3", "prompt_tuning", "prefix_tuning")
LATE_PROMPT_ENCODERS = ("late_prompt_roberta", "late_prompt_gpt2", "late_prompt_causal")
# BitFit: every backbone weight but the biases is frozen through the optimizer's parameter
# groups (AllenNLP's `requires_grad: false`); biases train without weight decay.
BITFIT_GROUPS = [
    [["^_text_field_embedder\\..*(?<!\\.bias)$"], {"requires_grad": False}],
    [["\\.bias$"], {"weight_decay": 0.0}],
]


def check_methods(methods: Any, *, flag: str = "--methods") -> None:
    unknown = [m for m in methods if m not in DEFAULTS]
    if unknown or not methods:
        raise ConfigurationError(
            f"{flag}: unknown method(s) {unknown}; choose from {', '.join(METHODS)}."
            if unknown else f"{flag}: give at least one of {', '.join(METHODS)}."
        )


def _late_prompt_parts(config: Dict[str, Any], source: str) -> Dict[str, Any]:
    """The model's `late_prompt_transformer` embedder config, or a ConfigurationError saying
    what a base config must hold."""
    model = config.get("model", {})
    tokens = model.get("text_field_embedder", {}).get("token_embedders", {}).get("tokens", {})
    encoder = model.get("seq2vec_encoder") if model.get("type") == "basic_classifier" else model.get("encoder")
    if tokens.get("type") != "late_prompt_transformer" or not isinstance(encoder, dict) \
            or encoder.get("type") not in LATE_PROMPT_ENCODERS:
        raise ConfigurationError(
            f"{source}: lpt-compare needs a late-prompt training config: model.type "
            f"basic_classifier (with a late_prompt_* seq2vec_encoder) or late_prompt_classifier "
            f"(with a late_prompt_* encoder), its text_field_embedder.token_embedders.tokens a "
            f"late_prompt_transformer. Start from training_configs/quickstart.jsonnet or a "
            f"paper config."
        )
    return tokens


def _pooler(encoder: Dict[str, Any], hidden_size: int) -> Dict[str, Any]:
    """The seq2vec encoder that pools as the late-prompt encoder did (first token, mean of the
    tokens, or the last real token for causal models)."""
    if encoder["type"] != "late_prompt_roberta":
        return {"type": "cls_pooler", "embedding_dim": hidden_size, "cls_is_last_token": True}
    if encoder.get("pooling", "first") == "mean":
        return {"type": "bag_of_embeddings", "embedding_dim": hidden_size, "averaged": True}
    return {"type": "cls_pooler", "embedding_dim": hidden_size}


def with_method(
    config: Dict[str, Any], method: str, options: Optional[Dict[str, Any]] = None, *, source: str = "the config"
) -> Dict[str, Any]:
    """
    `config` (a late-prompt training config, as a dict) with `method` in place of late prompt:
    the method's embedder (`peft_transformer`, or `pretrained_transformer` for full fine-tuning
    and BitFit) where `late_prompt_transformer` was, the same head (a pooler over the final
    states where the late-prompt encoder pooled, or the verbalizer without an encoder), the
    method's learning rate. `options` change the defaults: `lr`, and the method's own
    (`r`, `alpha`, `num_virtual_tokens`, ...).
    """
    check_methods([method], flag="method")
    defaults = DEFAULTS[method]
    chosen = dict(defaults.options, **(options or {}))
    lr = chosen.pop("lr", defaults.lr)
    config = copy.deepcopy(config)
    tokens = _late_prompt_parts(config, source)
    if lr is not None:
        config.setdefault("trainer", {}).setdefault("optimizer", {})["lr"] = lr
    if method == "late_prompt":
        if chosen:
            raise ConfigurationError(f"late_prompt takes no options besides lr here (got {sorted(chosen)}); "
                                     f"change the base config with -o instead.")
        return config
    model_name = tokens["model_name"]
    model = config["model"]
    if method in PEFT_METHODS:
        embedder: Dict[str, Any] = {"type": "peft_transformer", "model_name": model_name,
                                    "method": {"type": method, **chosen}}
        for key in ("backbone_dtype", "save_backbone"):
            if key in tokens:
                embedder[key] = tokens[key]
    else:
        if chosen:
            raise ConfigurationError(f"{method} takes no options besides lr (got {sorted(chosen)}).")
        embedder = {"type": "pretrained_transformer", "model_name": model_name, "train_parameters": True}
        if method == "bitfit":
            config["trainer"]["optimizer"]["parameter_groups"] = copy.deepcopy(BITFIT_GROUPS)
    model["text_field_embedder"]["token_embedders"]["tokens"] = embedder
    if model.get("type") == "basic_classifier":
        backbone = load_backbone_config(model_name)
        hidden = family_for_config(backbone, model_name).hidden_size(backbone)
        model["seq2vec_encoder"] = _pooler(model["seq2vec_encoder"], hidden)
    else:
        model.pop("encoder")
    reader = config.get("dataset_reader", {})
    reader.pop("cache_keys", None)  # only late prompt caches states
    return config
