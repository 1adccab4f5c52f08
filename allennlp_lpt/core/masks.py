"""Attention masks and prompt insertion: the tensor arithmetic every family shares."""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from allennlp_lpt.core.checks import BatchCheck


def attention_bias(
    mask: torch.Tensor,
    dtype: torch.dtype,
    *,
    causal: bool,
    sliding_window: Optional[int] = None,
) -> torch.Tensor:
    """
    Turns a boolean padding mask into the additive bias HuggingFace layers expect.

    # Parameters

    mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        True for positions that may be attended to.
    dtype : `torch.dtype`
        The dtype of the hidden states (the bias must match it).
    causal : `bool`
        Adds the lower-triangular mask over the whole (prompt-extended) sequence, so that prompt
        i sees prompts <= i and every real token sees every prompt.
    sliding_window : `int`, optional
        With `causal`: position i sees only positions j with `i - j < sliding_window` (Mistral).

    # Returns

    `torch.Tensor`, shape `(batch_size, 1, 1, seq_len)`, or `(batch_size, 1, seq_len, seq_len)`
    when `causal`: 0 where attention is allowed, the dtype's minimum elsewhere. The causal form is
    complete on its own (GPT-2's SDPA attention skips its own causal mask when one is given).
    """
    allowed = mask.bool()[:, None, None, :]
    if causal:
        length = mask.size(1)
        lower = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril()
        if sliding_window is not None:
            lower = lower & ~lower.tril(-sliding_window)
        allowed = allowed & lower[None, None, :, :]
    # Two kernels (fill, masked fill) for the whole stack: built once, read by every layer.
    bias = torch.full(allowed.shape, torch.finfo(dtype).min, dtype=dtype, device=mask.device)
    return bias.masked_fill_(allowed, 0.0)


def as_additive_bias(mask: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    """
    The additive form of an attention mask that HuggingFace's own model code built for its
    layers (a whole HF model run with the lean attention modules): transformers 5 hands SDPA
    attention a boolean mask (True = attend), eager attention an additive one, or None.

    # Parameters

    mask : `torch.Tensor`, optional, shape `(batch_size, 1, seq_len or 1, key_len)`
    dtype : `torch.dtype`
        The dtype of the states the bias is added to.

    # Returns

    `torch.Tensor` of the same shape in `dtype` (0 = attend, the dtype's minimum = do not), or
    None where `mask` is None.
    """
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)


@dataclass
class Layout:
    """
    An explicit arrangement of a causal model's sequence, for sequences that are not one text
    read left to right: several continuations of one context side by side (generative scoring's
    answer candidates), each seeing the context and its own earlier tokens. The core's stacks
    run a layout with per-row positions and this visibility instead of the plain causal mask.

    # Parameters

    positions : `torch.LongTensor`, shape `(batch_size, seq_len)`
        Each slot's position (what GPT-2 embeds, what rotary attention rotates by).
    visible : `torch.BoolTensor`, shape `(batch_size, seq_len, seq_len)`
        `visible[b, q, k]`: whether slot q attends to slot k. Complete on its own (causality and
        padding included); every slot should see at least one slot.
    """

    positions: torch.Tensor
    visible: torch.Tensor

    def with_prompt(self, n: int) -> "Layout":
        """
        The layout of `[prompt; sequence]`: the prompt's n vectors at positions `-n .. -1`,
        prompt i seeing prompts <= i and nothing else, every slot seeing the whole prompt.
        """
        batch, length = self.positions.shape
        device = self.positions.device
        prompt_positions = torch.arange(-n, 0, device=device).expand(batch, n)
        top = torch.cat([
            torch.ones(n, n, dtype=torch.bool, device=device).tril().expand(batch, n, n),
            torch.zeros(batch, n, length, dtype=torch.bool, device=device),
        ], dim=2)
        bottom = torch.cat([
            torch.ones(batch, length, n, dtype=torch.bool, device=device), self.visible.bool()
        ], dim=2)
        return Layout(torch.cat([prompt_positions, self.positions], dim=1), torch.cat([top, bottom], dim=1))


def visibility_bias(
    visible: torch.Tensor, dtype: torch.dtype, *, positions: Optional[torch.Tensor] = None,
    sliding_window: Optional[int] = None,
) -> torch.Tensor:
    """
    The additive bias of a `Layout`'s visibility, `(batch, q, k)` booleans -> `(batch, 1, q, k)`:
    0 where attention is allowed, the dtype's minimum elsewhere. With `sliding_window` (and the
    layout's `positions`), a slot also sees only slots fewer than `sliding_window` positions back.
    """
    allowed = visible.bool()
    if sliding_window is not None:
        assert positions is not None, "a sliding window needs the layout's positions"
        allowed = allowed & ((positions[:, :, None] - positions[:, None, :]) < sliding_window)
    bias = torch.full(allowed.shape, torch.finfo(dtype).min, dtype=dtype, device=visible.device)
    return bias.masked_fill_(allowed, 0.0)[:, None]


def prepend_prompt(
    states: torch.Tensor, mask: torch.Tensor, prompt: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Prepends the prompt vectors to the hidden states and `n` "attend" entries to the mask.
    Nothing is replaced; every index into the sequence shifts by `n`.

    # Parameters

    states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
    mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
    prompt : `torch.Tensor`, shape `(batch_size, n, hidden_size)`

    # Returns

    `(states, mask)` of shapes `(batch_size, n + seq_len, hidden_size)` and `(batch_size, n + seq_len)`.
    """
    if prompt.dim() != 3 or prompt.size(0) != states.size(0) or prompt.size(2) != states.size(2):
        raise ValueError(
            f"prompt of shape {tuple(prompt.shape)} does not fit states of shape "
            f"{tuple(states.shape)}: expected (batch_size, n, hidden_size)"
        )
    # The mask is extended by one padding kernel, not a new tensor and a concatenation.
    return (
        torch.cat([prompt.to(states.dtype), states], dim=1),
        torch.nn.functional.pad(mask.bool(), (prompt.size(1), 0), value=True),
    )


def right_padding_violations(mask: torch.Tensor) -> torch.Tensor:
    """
    `(batch_size,)` booleans: rows of `mask` that are not real tokens first, then padding (or
    have no real token at all).
    """
    # A real token after a padding position is an increase along the row.
    return ~mask[:, 0] | (mask[:, 1:] > mask[:, :-1]).any(dim=1)


def check_right_padded(
    mask: torch.Tensor, *, where: str, check: Optional[BatchCheck] = None
) -> None:
    """
    Raises a ValueError unless every row of `mask` is its real tokens first, then padding: the
    positions GPT-2 embeds, the last token the causal encoders pool and score from, and the
    cache's keys all count from the left.

    # Parameters

    mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
    where : `str`
        The component that received it, for the message.
    check : `BatchCheck`, optional
        The component's own `BatchCheck`: on a GPU it reads the verdict back later instead of
        waiting for it (see `BatchCheck`). Without one the check is immediate.
    """
    mask = mask.bool()
    if mask.dim() != 2 or mask.size(1) == 0:
        raise ValueError(f"{where}: expected a (batch_size, seq_len) mask, got shape {tuple(mask.shape)}")

    def message(row: int) -> str:
        return (
            f"{where}: the mask of row {row} is {mask[row].int().tolist()}, not right-padded "
            f"(real tokens first, then padding, at least one real token). Pad on the right, as "
            f"AllenNLP's indexers do; left padding (e.g. a tokenizer with padding_side='left') "
            f"and gaps are not supported."
        )

    (check or BatchCheck(defer=False))(right_padding_violations(mask), message)
