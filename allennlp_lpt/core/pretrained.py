"""Frozen pretrained weights that an archive may leave out, because `model_name` restores them."""
from collections import OrderedDict
from typing import Any, Dict, List

import torch


class PretrainedPart(torch.nn.Module):
    """
    A frozen module whose weights were loaded from `model_name`. With `save_weights` False its
    weights stay out of `state_dict()` (so archives and checkpoints hold only what trained), and
    loading a state dict without them keeps the weights it was built with instead of reporting
    missing keys. A state dict that does hold them is loaded as usual.
    """

    save_weights: bool = True

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False):  # type: ignore[override]
        if self.save_weights:
            return super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        return OrderedDict() if destination is None else destination

    def _load_from_state_dict(
        self,
        state_dict: Dict[str, Any],
        prefix: str,
        local_metadata: Dict[str, Any],
        strict: bool,
        missing_keys: List[str],
        unexpected_keys: List[str],
        error_msgs: List[str],
    ) -> None:
        if not any(key.startswith(prefix) for key in state_dict):
            # Nothing of ours was saved: fill in our own current weights, which PyTorch then
            # copies onto themselves (the children read their entries from this same dict).
            for name, value in super().state_dict(prefix=prefix, keep_vars=True).items():
                state_dict[name] = value.detach()
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class PretrainedHead(PretrainedPart):
    """A frozen pretrained language-model head, `(..., hidden) -> (..., vocab)`."""

    def __init__(self, head: torch.nn.Module) -> None:
        super().__init__()
        self.head = head
        for parameter in self.head.parameters():
            parameter.requires_grad_(False)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.head(states)
