"""The one place that performs the transformer surgery of Late Prompt Tuning.

`family` says what a backbone family is (`BackboneFamily`) and finds the one for a model;
`stacks` runs the frozen layers below the prompt layer (`LowerStack`) and inserts the prompt
before running the layers above it (`UpperStack`); `masks` builds attention biases; `attention`
is the lean encoder self-attention those layers use; `dropout` the cheaper CPU dropout mask.
"""
from allennlp_lpt.core.family import (
    BackboneFamily,
    family_for_config,
    family_for_model,
    load_backbone_config,
    register_family,
    resolve_model_name,
    supported_model_types,
    validate_prompt_layer,
)
from allennlp_lpt.core.masks import attention_bias, prepend_prompt
from allennlp_lpt.core.stacks import LowerStack, UpperStack

__all__ = [
    "BackboneFamily",
    "LowerStack",
    "UpperStack",
    "attention_bias",
    "family_for_config",
    "family_for_model",
    "load_backbone_config",
    "prepend_prompt",
    "register_family",
    "resolve_model_name",
    "supported_model_types",
    "validate_prompt_layer",
]
