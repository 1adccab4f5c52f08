"""
How a late-prompt training config becomes the same config with another tuning method: the data,
reader, head, trainer and seeds stay; only the part of the model that trains changes. What each
method brings (its embedder, learning rate, options, optimizer groups) comes from its class in
`allennlp_lpt/modules/tuning_methods/`; this module holds only the swap that is the same for all.
"""
import copy
from typing import Any, Dict, List, Optional, Sequence, Type

from allennlp.common.checks import ConfigurationError

from allennlp_lpt.core.family import family_for_config, load_backbone_config
from allennlp_lpt.experiments.tables import markdown_table
from allennlp_lpt.modules.tuning_methods import TuningMethod, method_names

LATE_PROMPT_ENCODERS = ("late_prompt_roberta", "late_prompt_gpt2", "late_prompt_causal")
# Models with a `seq2vec_encoder` and a linear head (the quickstart's, and AllenNLP's own).
BASIC_CLASSIFIERS = ("lpt_basic_classifier", "basic_classifier")


def method_class(method: str, *, flag: str = "--methods") -> Type[TuningMethod]:
    """The registered method called `method`, or a ConfigurationError listing them."""
    check_methods([method], flag=flag)
    return TuningMethod.by_name(method)


def check_methods(methods: Sequence[str], *, flag: str = "--methods") -> None:
    """Every entry a registered method, none twice, at least one; else a ConfigurationError
    naming `flag`."""
    known = method_names()
    unknown = [m for m in methods if m not in known]
    if unknown or not methods:
        raise ConfigurationError(
            f"{flag}: unknown method(s) {unknown}; choose from {', '.join(known)}."
            if unknown else f"{flag}: give at least one of {', '.join(known)}."
        )
    repeated = sorted({m for m in methods if list(methods).count(m) > 1})
    if repeated:
        raise ConfigurationError(f"{flag}: {', '.join(repeated)} given more than once; give each method once.")


def _late_prompt_parts(config: Dict[str, Any], source: str) -> Dict[str, Any]:
    """The model's `late_prompt_transformer` embedder config, or a ConfigurationError saying
    what a base config must hold."""
    model = config.get("model", {})
    tokens = model.get("text_field_embedder", {}).get("token_embedders", {}).get("tokens", {})
    encoder = model.get("seq2vec_encoder") if model.get("type") in BASIC_CLASSIFIERS else model.get("encoder")
    if tokens.get("type") != "late_prompt_transformer" or not isinstance(encoder, dict) \
            or encoder.get("type") not in LATE_PROMPT_ENCODERS:
        raise ConfigurationError(
            f"{source}: lpt-compare needs a late-prompt training config: model.type "
            f"lpt_basic_classifier or basic_classifier (with a late_prompt_* seq2vec_encoder) or "
            f"late_prompt_classifier "
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
    the method's embedder where `late_prompt_transformer` was, the same head (a pooler over the
    final states where the late-prompt encoder pooled, or the verbalizer without an encoder),
    the method's learning rate and optimizer groups. `options` change the defaults: `lr`, and
    the method's own (`r`, `alpha`, `num_virtual_tokens`, ...), checked here.
    """
    cls = method_class(method, flag="method")
    chosen = dict(options or {})
    lr = chosen.pop("lr", cls.lr)
    cls.checked(chosen, key=f"--method-options {method}")  # a bad option fails before training
    chosen = dict(cls.options(), **chosen)
    config = copy.deepcopy(config)
    tokens = _late_prompt_parts(config, source)
    if lr is not None:
        config.setdefault("trainer", {}).setdefault("optimizer", {})["lr"] = lr
    embedder = cls.embedder(tokens, chosen)
    if embedder is None:  # late prompt: the base config is the method's config
        return config
    groups = cls.parameter_groups()
    if groups is not None:
        config["trainer"]["optimizer"]["parameter_groups"] = groups
    model = config["model"]
    model["text_field_embedder"]["token_embedders"]["tokens"] = embedder
    if model.get("type") in BASIC_CLASSIFIERS:
        backbone = load_backbone_config(tokens["model_name"])
        hidden = family_for_config(backbone, tokens["model_name"]).hidden_size(backbone)
        model["seq2vec_encoder"] = _pooler(model["seq2vec_encoder"], hidden)
    else:
        model.pop("encoder")
    config.get("dataset_reader", {}).pop("cache_keys", None)  # only late prompt caches states
    return config


def _number(value: Any) -> str:
    """1e-3 rather than 0.001; integers and words as they are."""
    if value is None:
        return "the base config's"
    if isinstance(value, float):
        return f"{value:.0e}".replace("e-0", "e-").replace("e+00", "") if value < 1 else f"{value:g}"
    return str(value)


def methods_table() -> str:
    """Every registered method as a markdown table (what `allennlp lpt-methods` prints and the
    READMEs show): its component, what trains, learning rate and search range, options, source."""
    rows: List[List[str]] = []
    for name in method_names():
        cls = TuningMethod.by_name(name)
        options = ", ".join(f"{key} {_number(value)}" for key, value in cls.options().items())
        low, high = cls.lr_range
        rows.append([f"`{name}`", cls.title, f"`{cls.component}`", cls.trains, _number(cls.lr),
                     f"{_number(low)} .. {_number(high)}", options or "-", cls.source])
    return markdown_table(
        ["method", "name", "component", "trains", "learning rate", "search range", "options", "source"], rows
    )
