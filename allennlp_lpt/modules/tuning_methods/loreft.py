from typing import Any, Dict, List, Literal, Optional, Type, Union

import torch
from allennlp.common.checks import ConfigurationError
from torch.nn.utils.parametrizations import orthogonal
from transformers import PretrainedConfig

from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.core.interventions import LayerEdits
from allennlp_lpt.modules.tuning_methods.tuning_method import TuningMethod, at_least_one, frozen_base_embedder


class LoreftIntervention(torch.nn.Module):
    """
    LoReFT's edit of one layer's states: `Φ(h) = h + Rᵀ(Wh + b − Rh)`, with `R` (`rank` x
    `hidden_size`) of orthonormal rows (kept so by torch's orthogonal parametrization, from an
    orthogonal start) and `W`, `b` a linear map to `rank` dimensions. Dropout acts on the edit
    `Rᵀ(Wh + b − Rh)`.

    # Parameters

    hidden_size : `int`
    rank : `int`
    dropout : `float`
    """

    def __init__(self, hidden_size: int, rank: int, dropout: float) -> None:
        super().__init__()
        rotation = torch.nn.Linear(hidden_size, rank, bias=False)
        torch.nn.init.orthogonal_(rotation.weight)
        self.rotation = orthogonal(rotation)  # its weight is R
        self.source = torch.nn.Linear(hidden_size, rank)  # W and b
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """`(..., hidden_size)` -> `(..., hidden_size)`."""
        rotation = self.rotation.weight  # (rank, hidden_size)
        return states + self.dropout((self.source(states) - states @ rotation.T) @ rotation)


@TuningMethod.register("loreft")
class Loreft(TuningMethod):
    """
    LoReFT (Wu et al., 2024, "ReFT: Representation Finetuning for Language Models", section
    3): the frozen model's hidden states are edited at chosen layers and positions,
    `h + Rᵀ(Wh + b − Rh)` (`LoreftIntervention`), one edit per layer shared by its first and
    last positions; only `R`, `W` and `b` of each edited layer train (and the head). Carried by
    `reft_transformer`, whose layers it edits through hooks (`core.interventions`).

    Defaults are the paper's GLUE setting as the GLUE command of pyreft's `examples/loreft`
    runs it (RoBERTa-base: every layer, rank 1, the first token, dropout 0.05, lr 6e-4). The
    first token is what a BERT-like head pools; a causal model's head reads the last token,
    which an edit of earlier positions reaches only through attention (set `last_positions: 1`
    there). pyreft applies its dropout to the whole edited state `h + edit`; here it acts on
    the edit alone, so the frozen states see only the model's own dropout.

    With `late_prompt_classifier`'s generative scoring (causal models), each row is the text
    followed by one candidate answer, so `last_positions` counts from the answer's end.

    Registered as a `TuningMethod` with name "loreft".

    # Parameters

    layers : `Union[Literal["all"], List[int]]`, optional (default = `"all"`)
        The layers whose output is edited, 1 to the model's number of layers (layer `l`'s
        output is HuggingFace's `hidden_states[l]`), or `"all"`.
    first_positions : `int`, optional (default = `1`)
        Edit the first this many real tokens of each input (`<s>` / `[CLS]` first).
    last_positions : `int`, optional (default = `0`)
        Edit the last this many real tokens of each input (padding is never edited).
    rank : `int`, optional (default = `1`)
        The rows of `R` (at most the hidden size).
    dropout : `float`, optional (default = `0.05`)
        Dropout on the edit.
    """

    title = "LoReFT"
    trains = "low-rank edits of the hidden states at the first and last tokens of chosen layers"
    component = "reft_transformer"
    key = "reft_transformer.method"
    lr = 6e-4
    lr_range = (1e-4, 1e-2)
    source = ("ReFT paper (Wu et al., 2024), GLUE on RoBERTa-base as the GLUE command of pyreft's "
              "examples/loreft runs it: every layer, rank 1, first position, dropout 0.05, lr 6e-4")

    def __init__(
        self,
        layers: Union[Literal["all"], List[int]] = "all",
        first_positions: int = 1,
        last_positions: int = 0,
        rank: int = 1,
        dropout: float = 0.05,
    ) -> None:
        key = self.key
        if isinstance(layers, str):
            if layers != "all":
                raise ConfigurationError(f'{key}.layers={layers!r}: give "all" or a list of layer numbers.')
        elif not isinstance(layers, (list, tuple)) or not layers \
                or any(isinstance(layer, bool) or not isinstance(layer, int) for layer in layers):
            raise ConfigurationError(f'{key}.layers={layers!r}: give "all" or a non-empty list of layer numbers.')
        elif len(set(layers)) != len(layers):
            raise ConfigurationError(f"{key}.layers={layers!r}: give each layer once.")
        for name, value in (("first_positions", first_positions), ("last_positions", last_positions)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"{key}.{name}={value!r}: give an integer of 0 or more.")
        if first_positions + last_positions == 0:
            raise ConfigurationError(
                f"{key}: first_positions and last_positions are both 0, so nothing would be edited; "
                f"give at least one position (the paper's GLUE setting: first_positions 1)."
            )
        if not 0 <= dropout < 1:
            raise ConfigurationError(f"{key}.dropout={dropout!r}: give a probability in [0, 1).")
        self.layers = layers
        self.first_positions = first_positions
        self.last_positions = last_positions
        self.rank = at_least_one(rank, f"{key}.rank")
        self.dropout = dropout

    @classmethod
    def embedder(cls, tokens: Dict[str, Any], options: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        return frozen_base_embedder(cls, tokens, options)

    def layer_edits(self, config: PretrainedConfig, family: Type[BackboneFamily], model_name: str) -> LayerEdits:
        """The edits for a model of `family` with `config` (float32, trainable), not yet
        attached; a layer or rank the model does not have is a ConfigurationError."""
        num_layers, hidden_size = family.num_layers(config), family.hidden_size(config)
        layers = list(range(1, num_layers + 1)) if self.layers == "all" else list(self.layers)
        outside = [layer for layer in layers if not 1 <= layer <= num_layers]
        if outside:
            raise ConfigurationError(
                f"{self.key}.layers: {outside} not among the layers of {model_name!r}, which has "
                f"{num_layers}; give layers 1 to {num_layers} (or \"all\")."
            )
        if self.rank > hidden_size:
            raise ConfigurationError(
                f"{self.key}.rank={self.rank} is more than the hidden size of {model_name!r} "
                f"({hidden_size}); R's rows are orthonormal, so give at most {hidden_size}."
            )
        edits = {layer: LoreftIntervention(hidden_size, self.rank, self.dropout) for layer in layers}
        return LayerEdits(edits, first=self.first_positions, last=self.last_positions)

    def apply_to_classifier(
        self, model: torch.nn.Module, family: Type[BackboneFamily], model_name: str
    ) -> torch.nn.Module:
        edits = self.layer_edits(model.config, family, model_name)
        edits.attach(model, family)
        model.add_module("loreft_edits", edits)  # trains and moves with the model
        head = model.base_model_prefix  # everything outside the base model is the new head
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(not name.startswith(head + "."))
        return model

    def describe(self) -> str:
        return (f"loreft (layers {self.layers}, first {self.first_positions}, last {self.last_positions}, "
                f"rank {self.rank}, dropout {self.dropout:g})")
