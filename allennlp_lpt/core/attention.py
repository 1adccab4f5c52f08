"""
The attention kernel of the layers the core runs, shared by every family's attention module.

PyTorch's `scaled_dot_product_attention` keeps no `batch x heads x T x T` probability tensor for
the backward pass (RoBERTa has only HF's eager kernel, which does, under transformers 4.43). One
exception: with attention dropout on the CPU, SDPA itself falls back to its plain math kernel
with a slow dropout mask, so there the probabilities are computed directly and dropped with
`core.dropout` (the same computation, at 60-80% of the time).
"""
import math
from typing import Optional

import torch

from allennlp_lpt.core.dropout import dropout


def attend(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    bias: Optional[torch.Tensor],
    *,
    num_heads: int,
    dropout_p: float,
    training: bool,
) -> torch.Tensor:
    """
    Multi-head `softmax(query key^T / sqrt(head_size) + bias)`, dropped out in training, times
    `value`, per head, with the heads merged again.

    # Parameters

    query, key, value : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        The projections; `hidden_size` is `num_heads x head_size`.
    bias : `torch.Tensor`, optional, shape `(batch_size, 1, 1 or seq_len, seq_len)`
        Additive (0 = attend, the dtype's minimum = do not), as `core.masks` makes it; a causal
        bias is complete on its own.
    num_heads : `int`
    dropout_p : `float`
        Dropout on the attention probabilities (only when `training`).

    # Returns

    `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`.
    """
    batch, length, hidden = query.shape
    query, key, value = (
        states.view(batch, length, num_heads, hidden // num_heads).transpose(1, 2)
        for states in (query, key, value)
    )
    context = attend_heads(query, key, value, bias, dropout_p=dropout_p, training=training)
    return context.transpose(1, 2).reshape(batch, length, hidden)


def attend_heads(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    bias: Optional[torch.Tensor],
    *,
    dropout_p: float,
    training: bool,
) -> torch.Tensor:
    """
    `attend` on heads already split (and, for rotary families, already rotated).

    # Parameters

    query, key, value : `torch.Tensor`, shape `(batch_size, num_heads, seq_len, head_size)`
    bias : `torch.Tensor`, optional, shape `(batch_size, 1, 1 or seq_len, seq_len)`
    dropout_p : `float`
    training : `bool`

    # Returns

    `torch.Tensor`, shape `(batch_size, num_heads, seq_len, head_size)`.
    """
    p = dropout_p if training else 0.0
    if p > 0.0 and query.device.type == "cpu":
        scores = torch.matmul(query, key.transpose(-1, -2)) * (1.0 / math.sqrt(query.size(-1)))
        if bias is not None:
            scores = scores + bias
        probabilities = dropout(scores.softmax(dim=-1), p, training=True)
        return torch.matmul(probabilities.to(value.dtype), value)
    return torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=bias, dropout_p=p
    )
