"""
One loaded pretrained model per process, per model and dtype, shared by every component.

A late-prompt model reads one backbone from three places: the embedder runs its embeddings and
lower layers, the encoder its upper layers and final norm, the verbalizer model its LM head.
`get_backbone` loads the model once (with its LM head where the checkpoint has one) and hands the
same `Backbone` to each of them, keyed by an explicit `BackboneSpec` as AllenNLP's
`cached_transformers` keys its transformers: nothing depends on the order in which components
are built. Entries live as long as some component holds them (weak values), so a test suite or a
sweep that builds many models does not keep every backbone alive.

The components never run the shared modules themselves: each takes `shared_copy`s of the
modules it needs, new module objects over the *same* parameter tensors, so that a component's
train/eval mode, its attention and dropout modules are its own while the weights exist once.
Tied weights (RoBERTa's and GPT-2's input embeddings and LM head) stay one tensor.
`core.pretrained.PretrainedPart` keeps the sharing read-only: loading different weights or
moving one model to another device or dtype gives that model its own copies instead of changing
the tensors another model reads.
"""
import copy
import threading
import weakref
from dataclasses import dataclass
from typing import List, Optional, Type

import torch
from allennlp.common.checks import ConfigurationError
from transformers import PretrainedConfig, PreTrainedModel

from allennlp_lpt.core.pretrained import share
from allennlp_lpt.core.family import (
    BackboneFamily,
    family_for_config,
    load_backbone_config,
    resolve_model_name,
)


@dataclass(frozen=True)
class BackboneSpec:
    """What makes two loads the same backbone: the model (as resolved to a folder or hub name)
    and the dtype its weights are stored in."""

    model_name: str
    dtype: torch.dtype = torch.float32


class Backbone:
    """
    A pretrained model, loaded once, and where its pieces are.

    # Parameters

    spec : `BackboneSpec`
    config : `PretrainedConfig`
    family : `Type[BackboneFamily]`
    model : `PreTrainedModel`
        The HuggingFace model with its language-model head, or the base model where the
        checkpoint has no head (`lm_head_missing` then lists the missing weights).
    """

    def __init__(
        self,
        spec: BackboneSpec,
        config: PretrainedConfig,
        family: Type[BackboneFamily],
        model: PreTrainedModel,
        lm_head_missing: List[str],
    ) -> None:
        self.spec = spec
        self.config = config
        self.family = family
        self.model = model
        self.lm_head_missing = lm_head_missing

    @property
    def num_layers(self) -> int:
        return self.family.num_layers(self.config)

    @property
    def hidden_size(self) -> int:
        return self.family.hidden_size(self.config)

    def lm_head(self, *, model_name: str) -> torch.nn.Module:
        """The pretrained (masked) language-model head, `(..., hidden) -> (..., vocab)`; a
        ConfigurationError naming the missing weights where the checkpoint has none."""
        if self.lm_head_missing:
            raise ConfigurationError(
                f"model_name={model_name!r} has no pretrained language-model head (missing "
                f"weights: {', '.join(self.lm_head_missing[:4])})."
            )
        return self.family.lm_head(self.model)

    def parameter_count(self) -> int:
        """Distinct parameters of the loaded model (tied weights counted once)."""
        return sum(p.numel() for p in self.model.parameters())


BACKBONE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_backbone_dtype(name: str, *, key: str = "backbone_dtype") -> torch.dtype:
    """`"float32"`, `"bfloat16"` or `"float16"` -> the torch dtype; anything else is a
    ConfigurationError naming the key."""
    dtype = BACKBONE_DTYPES.get(name)
    if dtype is None:
        raise ConfigurationError(
            f"{key}={name!r} is not one of {', '.join(map(repr, BACKBONE_DTYPES))}."
        )
    return dtype


_LOADED: "weakref.WeakValueDictionary[BackboneSpec, Backbone]" = weakref.WeakValueDictionary()
_LOADING = threading.Lock()


def get_backbone(
    model_name: str, *, dtype: torch.dtype = torch.float32, key: str = "model_name"
) -> Backbone:
    """
    The process's `Backbone` for `model_name` in `dtype`, loaded on first request.

    # Parameters

    model_name : `str`
        A HuggingFace model folder or hub name (see `resolve_model_name`).
    dtype : `torch.dtype`, optional (default = `torch.float32`)
    key : `str`, optional
        The config key that named the model, for error messages.
    """
    spec = BackboneSpec(resolve_model_name(model_name), dtype)
    with _LOADING:  # two threads building models must not load the same weights twice
        backbone = _LOADED.get(spec)
        if backbone is None or not _intact(backbone):
            config = load_backbone_config(model_name, key=key)
            family = family_for_config(config, model_name, key=key)
            model, missing = family.load_model(spec.model_name, config=config, dtype=dtype)
            family.check_model(model, model_name)
            model.eval()
            share(model, model_name)  # frozen; refuses requires_grad_(True)
            backbone = Backbone(spec, config, family, model, missing)
            _LOADED[spec] = backbone
        return backbone


def _intact(backbone: Backbone) -> bool:
    """Whether the cached weights are still on the CPU in the spec's dtype (PretrainedPart never
    changes them, but code outside the package could)."""
    parameter: Optional[torch.Tensor] = next(backbone.model.parameters(), None)
    return parameter is None or (
        parameter.device.type == "cpu" and parameter.dtype == backbone.spec.dtype
    )


def shared_copy(module: torch.nn.Module) -> torch.nn.Module:
    """
    A new module tree over the same parameter and buffer tensors as `module`: its own module
    objects (train/eval mode, submodules that may be swapped), no copied weights.
    """
    memo = {id(tensor): tensor for tensor in module.parameters()}
    memo.update({id(tensor): tensor for tensor in module.buffers()})
    return copy.deepcopy(module, memo)
