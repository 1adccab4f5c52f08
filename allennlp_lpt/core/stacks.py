"""
The two halves of a late-prompt backbone.

`LowerStack` runs the embeddings and layers 1..k without building an autograd graph: nothing
below the prompt layer trains, so nothing there keeps activations. `UpperStack` prepends the
prompt to the layer-k states, extends the mask and runs layers k+1..L (frozen, but gradients
flow through them to the prompt generator). Both read the one shared `Backbone` of their model
(`core.backbone`) through module copies of their own.
"""
from dataclasses import dataclass
from typing import Optional, Type

import torch

from allennlp_lpt.core.backbone import Backbone, get_backbone, shared_copy
from allennlp_lpt.core.dropout import use_fast_dropout
from allennlp_lpt.core.family import BackboneFamily, validate_prompt_layer
from allennlp_lpt.core.masks import Layout, prepend_prompt
from allennlp_lpt.core.pretrained import PretrainedPart


@dataclass(frozen=True)
class LowerStates:
    """
    The output of layer `layer` of a backbone for a batch, computed once and handed to
    several late-prompt models of that backbone (`MultiTaskPredictor`): each continues from it
    to its own prompt layer (`LowerStack.continue_from`) instead of running layers 1..`layer`
    again. Below the prompt layer everything is frozen and task-independent, so this is exact.

    # Parameters

    states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
    layer : `int`
        Which layer's output `states` is (0: the embeddings').
    """

    states: torch.Tensor
    layer: int


class _BackboneSlice(PretrainedPart):
    """
    A range of the shared backbone's layers, as module copies of this slice's own (see
    `core.backbone.shared_copy`): its mode, attention and dropout modules are its own, its
    weights are the backbone's.
    """

    def __init__(self, model_name: str, prompt_layer: int, *, dtype: torch.dtype) -> None:
        super().__init__()
        backbone = get_backbone(model_name, dtype=dtype)
        validate_prompt_layer(prompt_layer, backbone.num_layers, model_name=model_name)
        self.config = backbone.config
        self.family: Type[BackboneFamily] = backbone.family
        self.num_backbone_layers = backbone.num_layers
        self.model_name = model_name
        self.prompt_layer = prompt_layer
        # Not a submodule: the components hold the modules they run, not the whole model. Held
        # until this part's weights are converted (see `_apply`).
        self._backbone: Optional[Backbone] = backbone
        position_module = self.family.position_module(backbone.model)
        self.position_module = None if position_module is None else shared_copy(position_module)

    def _own_layers(self, start: int, stop: int) -> torch.nn.ModuleList:
        layers = torch.nn.ModuleList(
            [shared_copy(layer) for layer in list(self.family.layers(self.backbone.model))[start:stop]]
        )
        self.family.prepare_layers(layers, self.config)
        return layers

    def _finish(self) -> None:
        use_fast_dropout(self)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self._shared_ids = {id(parameter) for parameter in self.parameters()}

    @property
    def backbone(self) -> Backbone:
        """The shared backbone this slice was built from (until its weights are converted)."""
        if self._backbone is None:
            raise RuntimeError(
                f"this part of {self.model_name!r} no longer reads the shared backbone: its "
                f"weights were converted (.cuda(), .to(), .half()) into copies of its own."
            )
        return self._backbone

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def,override]
        result = super()._apply(fn, recurse)
        # Once none of the shared weights are ours any more (e.g. after .cuda()), let the
        # shared CPU copy go when no other model reads it.
        if self._backbone is not None and not any(
            id(parameter) in self._shared_ids for parameter in self.parameters()
        ):
            self._backbone = None
        return result

    @property
    def hidden_size(self) -> int:
        return self.family.hidden_size(self.config)

    def compile(self, *, backend: str = "inductor", mode: Optional[str] = None) -> None:  # type: ignore[override]
        """
        Runs this slice's computation through `torch.compile` from now on. Shapes are
        specialised on first sight; a second length makes the compiler mark the length dynamic,
        so bucketed batches cost at most a few compilations per slice and train/eval mode, not
        one per length.

        # Parameters

        backend : `str`, optional (default = `"inductor"`)
            `torch.compile`'s backend (`"eager"` or `"aot_eager"` to debug).
        mode : `str`, optional
            `torch.compile`'s mode (e.g. `"max-autotune"`).
        """
        self._compiled = torch.compile(self._compute, backend=backend, mode=mode)

    def _run(self, *args: torch.Tensor) -> torch.Tensor:
        compiled = getattr(self, "_compiled", None)
        return compiled(*args) if compiled is not None else self._compute(*args)

    def run_layers(
        self,
        states: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        layout: Optional[Layout] = None,
        *,
        start: int = 0,
        stop: Optional[int] = None,
    ) -> torch.Tensor:
        """
        Runs this slice's layers `start .. stop - 1` (default: all) in order.

        # Parameters

        states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        positions : `torch.LongTensor`, shape `(seq_len,)`
            Each slot's position (see `BackboneFamily`).
        layout : `Layout`, optional
            An explicit arrangement (causal families) instead of `positions` and the causal mask.
        start : `int`, optional (default = `0`)
            Skip the slice's first `start` layers (their output is `states`).
        stop : `int`, optional
            Run no layer from the slice's `stop`-th on.

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`.
        """
        layers = list(self.layers)[start:stop]
        if not layers:
            return states
        if layout is not None and not self.family.is_causal:
            raise ValueError(f"a Layout is for causal models; {self.model_name!r} is bidirectional")
        inputs = self.family.layer_inputs(self.position_module, states, mask, positions, layout)
        for layer in layers:
            states = self.family.run_layer(layer, states, inputs)
        return states


class LowerStack(_BackboneSlice):
    """
    The frozen embeddings and the first `prompt_layer` layers of `model_name`.

    # Parameters

    model_name : `str`
        A HuggingFace model folder or name (see `resolve_model_name`).
    prompt_layer : `int`
        How many layers run before the prompt exists (0 = the embedding output).
    dtype : `torch.dtype`, optional (default = `torch.float32`)
        The dtype of the shared backbone's weights.
    """

    def __init__(
        self, model_name: str, prompt_layer: int, *, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__(model_name, prompt_layer, dtype=dtype)
        self.embeddings = shared_copy(self.family.embeddings(self.backbone.model))
        self.layers = self._own_layers(0, prompt_layer)
        self.max_positions = self.family.max_positions(self.config)
        self._finish()

    def forward(
        self,
        token_ids: torch.Tensor,
        mask: torch.Tensor,
        type_ids: Optional[torch.Tensor] = None,
        *,
        layout: Optional[Layout] = None,
    ) -> torch.Tensor:
        """
        # Parameters

        token_ids : `torch.LongTensor`, shape `(batch_size, seq_len)`
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        type_ids : `torch.LongTensor`, optional, shape `(batch_size, seq_len)`
        layout : `Layout`, optional
            Causal families: the sequence's explicit positions and visibility (runs uncompiled).

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`: the output of layer
        `prompt_layer` (HuggingFace's `hidden_states[prompt_layer]`), with no autograd graph.
        """
        # A shape: known on the host, no wait. (A layout's positions are its caller's to check.)
        if layout is None and token_ids.size(1) > self.max_positions:
            raise ValueError(
                f"a batch of {token_ids.size(1)} tokens per row is longer than {self.model_name!r} "
                f"has positions for ({self.max_positions}); truncate the input, e.g. with the "
                f"reader's max_length (dataset_reader.max_length <= {self.max_positions})."
            )
        with torch.no_grad():
            if layout is not None:
                return self._compute(token_ids, mask.bool(), type_ids, layout)
            if type_ids is None:
                return self._run(token_ids, mask.bool())
            return self._run(token_ids, mask.bool(), type_ids)

    def states_at(
        self,
        token_ids: torch.Tensor,
        mask: torch.Tensor,
        type_ids: Optional[torch.Tensor] = None,
        *,
        layer: int,
    ) -> torch.Tensor:
        """
        The output of layer `layer` (`0 .. prompt_layer`; 0: the embeddings'), without an
        autograd graph: the part of this stack that several models with higher prompt layers
        share (see `LowerStates`, `continue_from`).
        """
        if not 0 <= layer <= self.prompt_layer:
            raise ValueError(f"layer={layer}: use 0 to {self.prompt_layer}")
        with torch.no_grad():
            states = self.embeddings(input_ids=token_ids, token_type_ids=type_ids)
            positions = torch.arange(token_ids.size(1), device=token_ids.device)
            return self.run_layers(states, mask.bool(), positions, stop=layer)

    def continue_from(
        self, states: torch.Tensor, mask: torch.Tensor, start_layer: int
    ) -> torch.Tensor:
        """
        The output of layer `prompt_layer`, from the output of an earlier layer `start_layer`
        of the same backbone (computed elsewhere, e.g. once for several tasks): runs layers
        `start_layer + 1 .. prompt_layer` only, without an autograd graph.

        # Parameters

        states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        start_layer : `int`
            `0 .. prompt_layer` (0: `states` is the embedding output).
        """
        if not 0 <= start_layer <= self.prompt_layer:
            raise ValueError(f"start_layer={start_layer}: use 0 to {self.prompt_layer}")
        positions = torch.arange(states.size(1), device=states.device)
        with torch.no_grad():
            return self.run_layers(states, mask.bool(), positions, start=start_layer)

    def _compute(
        self,
        token_ids: torch.Tensor,
        mask: torch.Tensor,
        type_ids: Optional[torch.Tensor] = None,
        layout: Optional[Layout] = None,
    ) -> torch.Tensor:
        if layout is None:
            states = self.embeddings(input_ids=token_ids, token_type_ids=type_ids)
        else:
            states = self.embeddings(
                input_ids=token_ids, token_type_ids=type_ids, position_ids=layout.positions
            )
        positions = torch.arange(token_ids.size(1), device=token_ids.device)
        return self.run_layers(states, mask, positions, layout)


class UpperStack(_BackboneSlice):
    """
    The frozen layers `prompt_layer + 1 .. L` of `model_name` and its final normalisation.

    # Parameters

    model_name : `str`
    prompt_layer : `int`
        The layer whose output the prompt is prepended to.
    dtype : `torch.dtype`, optional (default = `torch.float32`)
    """

    def __init__(
        self, model_name: str, prompt_layer: int, *, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__(model_name, prompt_layer, dtype=dtype)
        self.layers = self._own_layers(prompt_layer, self.num_backbone_layers)
        self.final_norm = shared_copy(self.family.final_norm(self.backbone.model))
        self._finish()

    def forward(
        self,
        states: torch.Tensor,
        mask: torch.Tensor,
        prompt: torch.Tensor,
        *,
        layout: Optional[Layout] = None,
    ) -> torch.Tensor:
        """
        # Parameters

        states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
            The output of layer `prompt_layer`.
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        prompt : `torch.Tensor`, shape `(batch_size, n, hidden_size)`
        layout : `Layout`, optional
            Causal families: the sequence's explicit positions and visibility, without the
            prompt (`Layout.with_prompt` puts it in front); runs uncompiled.

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`: the final states of the real
        positions (the prompt positions are removed again, so indices need no shifting).
        """
        if layout is not None:
            return self._compute(states, mask, prompt, layout)
        return self._run(states, mask, prompt)

    def _compute(
        self,
        states: torch.Tensor,
        mask: torch.Tensor,
        prompt: torch.Tensor,
        layout: Optional[Layout] = None,
    ) -> torch.Tensor:
        extended_states, extended_mask = prepend_prompt(states, mask, prompt)
        n = prompt.size(1)
        # The prompt sits right before the first token (see BackboneFamily on positions).
        positions = torch.arange(-n, states.size(1), device=states.device)
        extended_layout = None if layout is None else layout.with_prompt(n)
        output = self.run_layers(extended_states, extended_mask, positions, extended_layout)
        return self.final_norm(output[:, n:])
