"""
Frozen pretrained weights that components share (`core.backbone`) and that an archive may leave
out, because `model_name` restores them.
"""
from collections import OrderedDict
from typing import Any, Callable, Dict, List

import torch


class SharedParameter(torch.nn.Parameter):
    """
    A frozen weight of a shared backbone (`core.backbone`), which every model of that backbone
    in the process reads. Making it trainable (`requires_grad_(True)` on it or on any module
    holding it, or `requires_grad = True`) would make every such model train it, so it is
    refused with an error that says what to do instead. A deep copy is no longer shared: it is
    an ordinary Parameter. Everything else behaves as a plain Parameter.
    """

    model_name: str = "the backbone"

    def requires_grad_(self, requires_grad: bool = True) -> "SharedParameter":  # type: ignore[override]
        if requires_grad:
            raise _unfreezing_error(self)
        return super().requires_grad_(False)

    @property  # type: ignore[override]
    def requires_grad(self) -> bool:
        return torch._C.TensorBase.requires_grad.__get__(self)  # type: ignore[attr-defined]

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value:
            raise _unfreezing_error(self)
        torch._C.TensorBase.requires_grad.__set__(self, False)  # type: ignore[attr-defined]

    def __deepcopy__(self, memo: Dict[int, Any]) -> torch.nn.Parameter:
        copied = torch.nn.Parameter(self.data.clone(memory_format=torch.preserve_format), requires_grad=False)
        memo[id(self)] = copied
        return copied


def _unfreezing_error(parameter: SharedParameter) -> RuntimeError:
    return RuntimeError(
        f"A weight of {parameter.model_name!r} cannot be made trainable: the frozen backbone is "
        f"loaded once and shared by every late-prompt component of that model in this process, "
        f"so every one of them would train it. Late prompt trains only the generator and the "
        f"head. To fine-tune the pretrained weights, use AllenNLP's pretrained_transformer "
        f"embedder with train_parameters: true."
    )


def share(model: torch.nn.Module, model_name: str) -> None:
    """Makes every parameter of `model` a frozen `SharedParameter` over the same tensor (tied
    weights stay one object)."""
    shared: Dict[int, SharedParameter] = {}
    for module in model.modules():
        for name, parameter in list(module._parameters.items()):
            if parameter is None:
                continue
            if id(parameter) not in shared:
                frozen = SharedParameter(parameter.detach(), requires_grad=False)
                frozen.model_name = model_name
                shared[id(parameter)] = frozen
            module._parameters[name] = shared[id(parameter)]


class PretrainedPart(torch.nn.Module):
    """
    A module whose frozen weights are the shared backbone's (`core.backbone`). It may also hold
    weights that train (a PEFT method's, inside `peft_transformer`): those behave as in any
    module, and what follows is about the frozen ones.

    - With `save_weights` False the frozen weights stay out of `state_dict()` (so archives and
      checkpoints hold only what trained), and loading a state dict without them keeps the
      weights it was built with instead of reporting missing keys.
    - The sharing is read-only. Loading a state dict whose values equal the shared weights
      writes nothing; a value that differs (an archive trained on another checkpoint) gives this
      part a copy of its own. Moving or casting the model (`.cuda()`, `.half()`, `.to(...)`)
      converts copies for this model only, never the tensors other models read; the parts of
      one model converted in one call get the same copies, so tied weights stay tied. (Weights
      loaded from a state dict are copied per part: tied ones then become two equal copies.)
    """

    save_weights: bool = True

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False):  # type: ignore[override]
        if self.save_weights:
            return super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        destination = OrderedDict() if destination is None else destination
        for key, value in super().state_dict(prefix=prefix, keep_vars=True).items():
            if isinstance(value, torch.nn.Parameter) and value.requires_grad:
                destination[key] = value if keep_vars else value.detach()
        return destination

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
        # The frozen entries (what trains loads as in any module).
        own = {
            key: value for key, value in super().state_dict(prefix=prefix, keep_vars=True).items()
            if not (isinstance(value, torch.nn.Parameter) and value.requires_grad)
        }
        copies: Dict[int, torch.nn.Parameter] = {}
        saved = any(key in state_dict for key in own)
        for key, current in own.items():
            incoming = state_dict.get(key)
            if incoming is None or not isinstance(current, torch.nn.Parameter):
                if incoming is None and not saved:
                    # Nothing of ours was saved (a lightweight archive): keep what we have.
                    state_dict[key] = current.detach()
                continue
            if incoming.shape == current.shape and torch.equal(
                incoming.to(device=current.device, dtype=current.dtype), current.detach()
            ):
                # The same values: PyTorch copies our own tensor onto itself, i.e. writes nothing.
                state_dict[key] = current.detach()
                continue
            if incoming.shape != current.shape:
                continue  # PyTorch reports the size mismatch
            # Different values: this part gets its own copy, which PyTorch then loads them into.
            own_copy = copies.get(id(current))
            if own_copy is None:
                own_copy = torch.nn.Parameter(current.detach().clone(), requires_grad=False)
                copies[id(current)] = own_copy
            _replace_parameter(self, current, own_copy)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True):  # type: ignore[override]
        # Module._apply would assign the converted tensor to `parameter.data`, changing the
        # shared Parameter for every model holding it. Give this model converted Parameters of
        # its own first; then Module._apply finds them converted already.
        memo = _memo_on(fn)
        for module in self.modules():
            for name, parameter in list(module._parameters.items()):
                if parameter is None or parameter.requires_grad:
                    continue  # a trained weight is this model's own: converted in place
                converted = memo.get(id(parameter))
                if converted is None:
                    with torch.no_grad():
                        applied = fn(parameter)
                    if applied is parameter:
                        continue
                    converted = torch.nn.Parameter(applied, requires_grad=parameter.requires_grad)
                    memo[id(parameter)] = converted
                module._parameters[name] = converted
        return super()._apply(fn, recurse)


def _memo_on(owner: Any) -> Dict[int, torch.nn.Parameter]:
    """A dict stored on `owner`, the conversion function of one `.to()` / `.cuda()` call, so the
    parts of one model share it and nothing outlives the call; a private dict where `owner`
    takes no attributes."""
    try:
        memo = owner.__dict__.setdefault("_lpt_shared_copies", {})
    except AttributeError:
        return {}
    return memo


def _replace_parameter(
    root: torch.nn.Module, old: torch.nn.Parameter, new: torch.nn.Parameter
) -> None:
    """Puts `new` wherever `old` is registered under `root` (tied weights are registered in
    several places)."""
    for module in root.modules():
        for key, parameter in list(module._parameters.items()):
            if parameter is old:
                module._parameters[key] = new


class PretrainedHead(PretrainedPart):
    """A frozen pretrained language-model head, `(..., hidden) -> (..., vocab)`."""

    def __init__(self, head: torch.nn.Module) -> None:
        super().__init__()
        self.head = head
        for parameter in self.head.parameters():
            parameter.requires_grad_(False)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.head(states)
