"""
Edits of the states a whole HuggingFace model's layers put out, at chosen token positions: how
representation fine-tuning (LoReFT, `modules/tuning_methods/loreft.py`) reaches a frozen model.

`LayerEdits` hooks onto the model's own layer modules (`BackboneFamily.layers`), so the model
runs its own forward (every family, either head, HuggingFace's sequence classifiers in the
benchmark) and the output of layer `l` (HuggingFace's `hidden_states[l]`) is replaced by its
edit at the first and last real tokens of each row before layer `l + 1` reads it. Nothing is
swapped into the model and no weight is copied: the hooks live in the model's own module copy
(`core.backbone.shared_copy`), never in the shared backbone.
"""
import functools
import inspect
from typing import Any, Dict, Optional, Tuple, Type

import torch
from transformers import PreTrainedModel

from allennlp_lpt.core.family import BackboneFamily


def edge_positions(mask: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """
    The first `first` and the last `last` real tokens of each row, wherever the padding is
    (either side, or none); a row with fewer than `first + last` real tokens has each of them
    once.

    # Parameters

    mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        True at real tokens.
    first : `int`
    last : `int`

    # Returns

    `torch.BoolTensor`, shape `(batch_size, seq_len)`: True at the chosen positions.
    """
    real = mask.bool()
    counted = real.long()
    from_start = counted.cumsum(dim=1)  # 1 at the first real token
    from_end = counted.flip(1).cumsum(dim=1).flip(1)  # 1 at the last real token
    return real & ((from_start <= first) | (from_end <= last))


class LayerEdits(torch.nn.Module):
    """
    Modules that edit the output states of chosen layers of a HuggingFace model, applied at
    the first `first` and last `last` real tokens of every row (`edge_positions` of the model's
    `attention_mask`; no mask: every token is real). The edit of layer `l` sees that layer's
    output and its result is what layer `l + 1` (or the final norm) reads; the other positions
    pass unchanged.

    # Parameters

    edits : `Dict[int, torch.nn.Module]`
        Layer (1 to the number of layers: the output of layer `l`, HuggingFace's
        `hidden_states[l]`) -> a module mapping states `(..., hidden_size)` to edited states of
        the same shape. The edits compute in their own dtype (float32 where they train) and give
        the states back in the model's.
    first : `int`
    last : `int`
    """

    def __init__(self, edits: Dict[int, torch.nn.Module], *, first: int, last: int) -> None:
        super().__init__()
        self.edits = torch.nn.ModuleDict({str(layer): edits[layer] for layer in sorted(edits)})
        self.first = first
        self.last = last
        # The positions of the batch the model is running, from its forward's start to its end.
        self._where: Optional[torch.Tensor] = None
        self._argument_index: Dict[str, int] = {}

    def attach(self, model: PreTrainedModel, family: Type[BackboneFamily]) -> None:
        """
        Hooks the edits onto `model` (a model of `family` as `family.load_model` loads it, or a
        HuggingFace sequence classifier of that family), whose `base_model` then runs with them.
        The hooks are bound to this module, so a deep copy of a model holding both edits with
        its own copy.
        """
        base = model.base_model
        names = list(inspect.signature(base.forward).parameters)
        self._argument_index = {name: names.index(name) for name in ("input_ids", "attention_mask") if name in names}
        base.register_forward_pre_hook(self._find_positions, with_kwargs=True)
        base.register_forward_hook(self._forget_positions)
        layers = family.layers(model)
        for key in self.edits:
            layers[int(key) - 1].register_forward_hook(functools.partial(self._edit_output, key))

    def _argument(self, name: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        if name in kwargs:
            return kwargs[name]
        index = self._argument_index.get(name)
        return args[index] if index is not None and index < len(args) else None

    def _find_positions(self, module: torch.nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        mask = self._argument("attention_mask", args, kwargs)
        if mask is None:
            tokens = self._argument("input_ids", args, kwargs)
            if tokens is None:
                tokens = kwargs["inputs_embeds"]
            mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        elif mask.dim() != 2:
            raise ValueError(
                f"the layer edits read the positions of real tokens from a (batch_size, seq_len) "
                f"attention_mask; this forward got one of shape {tuple(mask.shape)}."
            )
        self._where = edge_positions(mask, self.first, self.last)

    def _forget_positions(self, module: torch.nn.Module, args: Tuple[Any, ...], output: Any) -> None:
        self._where = None

    def _edit_output(self, key: str, layer: torch.nn.Module, args: Tuple[Any, ...], output: Any) -> Any:
        # HuggingFace layers return their states first in a tuple (a bare tensor in some releases).
        states = output[0] if isinstance(output, tuple) else output
        where = self._where
        if where is None or where.shape != states.shape[:2]:
            raise RuntimeError(
                "a layer with edits ran outside its model's forward (the edits read each row's "
                "positions when the model's base_model starts)."
            )
        edit = self.edits[key]
        edited = edit(states.to(_dtype_of(edit, states.dtype))).to(states.dtype)
        states = torch.where(where[..., None], edited, states)
        return (states,) + tuple(output[1:]) if isinstance(output, tuple) else states


def _dtype_of(module: torch.nn.Module, default: torch.dtype) -> torch.dtype:
    parameter = next(module.parameters(), None)
    return default if parameter is None else parameter.dtype
