"""
The two halves of a late-prompt backbone.

`LowerStack` runs the embeddings and layers 1..k without building an autograd graph: nothing
below the prompt layer trains, so nothing there keeps activations. `UpperStack` prepends the
prompt to the layer-k states, extends the mask and runs layers k+1..L (frozen, but gradients
flow through them to the prompt generator).
"""
from typing import Optional, Type

import torch

from allennlp_lpt.core.family import (
    BackboneFamily,
    family_for_config,
    load_backbone_config,
    validate_prompt_layer,
)
from allennlp_lpt.core.dropout import use_fast_dropout
from allennlp_lpt.core.masks import attention_bias, prepend_prompt
from allennlp_lpt.core.pretrained import PretrainedPart


def _freeze(module: torch.nn.Module) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(False)


def run_layers(
    layers: torch.nn.ModuleList, states: torch.Tensor, mask: torch.Tensor, *, causal: bool
) -> torch.Tensor:
    """
    Runs HuggingFace layers in order over `states` (`(batch, seq_len, hidden)`) with the padding
    `mask` (`(batch, seq_len)`), returning states of the same shape.
    """
    if len(layers) == 0:
        return states
    bias = attention_bias(mask, states.dtype, causal=causal)
    for layer in layers:
        states = layer(states, attention_mask=bias)[0]
    return states


class _BackboneSlice(PretrainedPart):
    """The family, config and validated prompt layer that both halves start from."""

    def __init__(self, model_name: str, prompt_layer: int) -> None:
        super().__init__()
        self.config = load_backbone_config(model_name)
        self.family: Type[BackboneFamily] = family_for_config(self.config, model_name)
        self.num_backbone_layers = self.family.num_layers(self.config)
        validate_prompt_layer(prompt_layer, self.num_backbone_layers, model_name=model_name)
        self.model_name = model_name
        self.prompt_layer = prompt_layer

    @property
    def hidden_size(self) -> int:
        return self.family.hidden_size(self.config)


class LowerStack(_BackboneSlice):
    """
    The frozen embeddings and the first `prompt_layer` layers of `model_name`. Only those layers
    are loaded.

    # Parameters

    model_name : `str`
        A HuggingFace model folder or name (see `resolve_model_name`).
    prompt_layer : `int`
        How many layers run before the prompt exists (0 = the embedding output).
    """

    def __init__(self, model_name: str, prompt_layer: int) -> None:
        super().__init__(model_name, prompt_layer)
        model = self.family.load_base_model(model_name, num_layers=prompt_layer)
        self.embeddings = self.family.embeddings(model)
        self.layers = self.family.layers(model)
        self.family.prepare_layers(self.layers, self.config)
        use_fast_dropout(self)
        _freeze(self)

    def forward(
        self, token_ids: torch.Tensor, mask: torch.Tensor, type_ids: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """
        # Parameters

        token_ids : `torch.LongTensor`, shape `(batch_size, seq_len)`
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        type_ids : `torch.LongTensor`, optional, shape `(batch_size, seq_len)`

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`: the output of layer
        `prompt_layer` (HuggingFace's `hidden_states[prompt_layer]`), with no autograd graph.
        """
        with torch.no_grad():
            states = self.embeddings(input_ids=token_ids, token_type_ids=type_ids)
            return run_layers(self.layers, states, mask, causal=self.family.is_causal)


class UpperStack(_BackboneSlice):
    """
    The frozen layers `prompt_layer + 1 .. L` of `model_name` and its final normalisation.

    # Parameters

    model_name : `str`
    prompt_layer : `int`
        The layer whose output the prompt is prepended to.
    """

    def __init__(self, model_name: str, prompt_layer: int) -> None:
        super().__init__(model_name, prompt_layer)
        model = self.family.load_base_model(model_name)
        self.layers = torch.nn.ModuleList(list(self.family.layers(model))[prompt_layer:])
        self.family.prepare_layers(self.layers, self.config)
        self.final_norm = self.family.final_norm(model)
        use_fast_dropout(self)
        _freeze(self)

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor, prompt: torch.Tensor
    ) -> torch.Tensor:
        """
        # Parameters

        states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
            The output of layer `prompt_layer`.
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        prompt : `torch.Tensor`, shape `(batch_size, n, hidden_size)`

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`: the final states of the real
        positions (the prompt positions are removed again, so indices need no shifting).
        """
        extended_states, extended_mask = prepend_prompt(states, mask, prompt)
        output = run_layers(self.layers, extended_states, extended_mask, causal=self.family.is_causal)
        return self.final_norm(output[:, prompt.size(1) :])
