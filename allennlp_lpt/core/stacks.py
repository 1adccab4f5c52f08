"""
The two halves of a late-prompt backbone.

`LowerStack` runs the embeddings and layers 1..k without building an autograd graph: nothing
below the prompt layer trains, so nothing there keeps activations. `UpperStack` prepends the
prompt to the layer-k states, extends the mask and runs layers k+1..L (frozen, but gradients
flow through them to the prompt generator). Both read the one shared `Backbone` of their model
(`core.backbone`) through module copies of their own.
"""
from typing import Optional, Type

import torch

from allennlp_lpt.core.backbone import Backbone, get_backbone, shared_copy
from allennlp_lpt.core.dropout import use_fast_dropout
from allennlp_lpt.core.family import BackboneFamily, validate_prompt_layer
from allennlp_lpt.core.masks import prepend_prompt
from allennlp_lpt.core.pretrained import PretrainedPart


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
        self, states: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """
        Runs this slice's layers in order.

        # Parameters

        states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        positions : `torch.LongTensor`, shape `(seq_len,)`
            Each slot's position (see `BackboneFamily`).

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`.
        """
        if len(self.layers) == 0:
            return states
        inputs = self.family.layer_inputs(self.position_module, states, mask, positions)
        for layer in self.layers:
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
        if token_ids.size(1) > self.max_positions:  # a shape: known on the host, no wait
            raise ValueError(
                f"a batch of {token_ids.size(1)} tokens per row is longer than {self.model_name!r} "
                f"has positions for ({self.max_positions}); truncate the input, e.g. with the "
                f"reader's max_length (dataset_reader.max_length <= {self.max_positions})."
            )
        with torch.no_grad():
            if type_ids is None:
                return self._run(token_ids, mask.bool())
            return self._run(token_ids, mask.bool(), type_ids)

    def _compute(
        self, token_ids: torch.Tensor, mask: torch.Tensor, type_ids: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        states = self.embeddings(input_ids=token_ids, token_type_ids=type_ids)
        positions = torch.arange(token_ids.size(1), device=token_ids.device)
        return self.run_layers(states, mask, positions)


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
        return self._run(states, mask, prompt)

    def _compute(self, states: torch.Tensor, mask: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        extended_states, extended_mask = prepend_prompt(states, mask, prompt)
        n = prompt.size(1)
        # The prompt sits right before the first token (see BackboneFamily on positions).
        positions = torch.arange(-n, states.size(1), device=states.device)
        output = self.run_layers(extended_states, extended_mask, positions)
        return self.final_norm(output[:, n:])
