"""
The attention kernel of the layers the core runs, shared by every family's attention module.

PyTorch's `scaled_dot_product_attention` keeps no `batch x heads x T x T` probability tensor for
the backward pass (HF's eager kernel, which some families' configs select, does). One
exception: with attention dropout on the CPU, SDPA itself falls back to its plain math kernel
with a slow dropout mask, so there the probabilities are computed directly and dropped with
`core.dropout` (the same computation, at 60-80% of the time).
"""
import math
from typing import Optional

import torch

from allennlp_lpt.core.dropout import dropout


def split_heads(states: torch.Tensor, num_heads: int) -> torch.Tensor:
    """`(batch, seq_len, heads x head_size)` -> `(batch, heads, seq_len, head_size)`."""
    batch, length, hidden = states.shape
    return states.view(batch, length, num_heads, hidden // num_heads).transpose(1, 2)


def merge_heads(states: torch.Tensor) -> torch.Tensor:
    """`(batch, heads, seq_len, head_size)` -> `(batch, seq_len, heads x head_size)`."""
    batch, heads, length, size = states.shape
    return states.transpose(1, 2).reshape(batch, length, heads * size)


def attend_heads(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    bias: Optional[torch.Tensor],
    *,
    dropout_p: float,
    training: bool,
    is_causal: bool = False,
) -> torch.Tensor:
    """
    Multi-head `softmax(query key^T / sqrt(head_size) + bias)`, dropped out in training, times
    `value`, on heads already split (`split_heads`; for rotary families already rotated).

    # Parameters

    query : `torch.Tensor`, shape `(batch_size, num_heads, seq_len, head_size)`
    key, value : `torch.Tensor`, shape `(batch_size, num_heads, key_len, head_size)`
        `key_len` exceeds `seq_len` where prefix keys and values come first (prefix tuning).
    bias : `torch.Tensor`, optional, shape `(batch_size, 1, 1 or seq_len, key_len)`
        Additive (0 = attend, the dtype's minimum = do not), as `core.masks` makes it; a causal
        bias is complete on its own.
    dropout_p : `float`
        Dropout on the attention probabilities (only when `training`).
    training : `bool`
    is_causal : `bool`, optional (default = `False`)
        With no `bias`: the plain causal mask (queries and keys of the same length).

    # Returns

    `torch.Tensor`, shape `(batch_size, num_heads, seq_len, head_size)`.
    """
    p = dropout_p if training else 0.0
    if is_causal and bias is None:
        if query.size(2) != key.size(2):
            raise ValueError("is_causal without a bias needs queries and keys of the same length")
        if p > 0.0 and query.device.type == "cpu":  # the direct path below takes a bias
            length = query.size(2)
            upper = torch.ones(length, length, dtype=torch.bool, device=query.device).triu(1)
            bias = torch.zeros(length, length, dtype=query.dtype, device=query.device).masked_fill(
                upper, torch.finfo(query.dtype).min
            )
            is_causal = False
    if p > 0.0 and query.device.type == "cpu":
        scores = torch.matmul(query, key.transpose(-1, -2)) * (1.0 / math.sqrt(query.size(-1)))
        if bias is not None:
            scores = scores + bias
        probabilities = dropout(scores.softmax(dim=-1), p, training=True)
        return torch.matmul(probabilities.to(value.dtype), value)
    return torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=bias, dropout_p=p, is_causal=is_causal and bias is None
    )
