"""
Whole HuggingFace models run with the core's kernels: the methods compared with late prompt
(`peft_transformer`, the benchmark's peers) train a complete transformer, and give it the
attention and dropout that late prompt's stacks run, so that no method is slower for want of a
kernel another one has.
"""
from typing import Tuple

import torch
from transformers import PreTrainedModel


def give_lean_modules(model: PreTrainedModel) -> None:
    """
    The HF model (one with a head, as `family.load_model` loads it) trains with the attention modules and
    the dropout that late prompt's stacks run (the family's lean SDPA attention over the same
    weights, the cheaper CPU dropout), and without a key/value cache nobody reads in training.
    Same computation, same results (tested), only the kernels differ. Modules are replaced in
    `model` itself: give it a `shared_copy` where its modules are shared.
    """
    from allennlp_lpt.core import family_for_config
    from allennlp_lpt.core.dropout import use_fast_dropout

    family = family_for_config(model.config, model.config.name_or_path)
    if family.lean_attention_fits_hf_layers:
        family.prepare_layers(family.layers(model), model.config)
        model.config.use_cache = False
    # Otherwise (Llama family) the model was loaded with HF's SDPA attention, the same kernel,
    # and keeps its cache switch: PEFT's prefix tuning passes its keys and values through it.
    use_fast_dropout(model)


def prefix_as_cache(model: torch.nn.Module) -> None:
    """
    transformers 4.43's Mistral and Qwen2 convert past keys and values given as tuples to a
    `DynamicCache` only in eval mode and fail in training. PEFT 0.15.2's prefix tuning (the
    pinned release) already hands them over as a `DynamicCache` for these decoder-only models;
    earlier releases (0.12) handed over tuples. A pre-hook on `model` (the transformer PEFT
    calls) converts any tuples that still arrive, as Llama does itself, so the prefix never
    depends on the PEFT release's format.
    """
    from transformers import DynamicCache

    def to_cache(module: torch.nn.Module, args: tuple, kwargs: dict) -> Tuple[tuple, dict]:
        past = kwargs.get("past_key_values")
        if isinstance(past, (tuple, list)):
            kwargs["past_key_values"] = DynamicCache.from_legacy_cache(past)
        return args, kwargs

    model.register_forward_pre_hook(to_cache, with_kwargs=True)
