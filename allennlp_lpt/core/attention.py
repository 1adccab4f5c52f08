"""
The self-attention of the BERT-like encoder layers the core runs (BERT, RoBERTa, MiniLM).

It computes exactly what HuggingFace's eager `BertSelfAttention` / `RobertaSelfAttention`
computes, over the same query/key/value weights, but through PyTorch's
`scaled_dot_product_attention`, so that no `batch x heads x T x T` probability tensor is stored
for the backward pass (RoBERTa has only the eager kernel in transformers 4.43). One exception:
with attention dropout on the CPU, SDPA itself falls back to its plain math kernel with a slow
dropout, so there the probabilities are computed directly and dropped with `core.dropout`.
"""
import math
from typing import Any, Optional, Tuple

import torch

from allennlp_lpt.core.dropout import dropout


class LeanSelfAttention(torch.nn.Module):
    """
    Encoder self-attention over an eager HuggingFace self-attention module's weights.

    # Parameters

    eager : `torch.nn.Module`
        A `BertSelfAttention`-like module (`query`, `key`, `value` linears) whose weights are
        shared, not copied.
    num_heads : `int`
    dropout_p : `float`
        The attention-probability dropout (`attention_probs_dropout_prob`).
    """

    def __init__(self, eager: torch.nn.Module, *, num_heads: int, dropout_p: float) -> None:
        super().__init__()
        self.query, self.key, self.value = eager.query, eager.key, eager.value
        self.num_heads = num_heads
        self.head_size = self.query.out_features // num_heads
        self.dropout_p = dropout_p

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        batch, length, _ = states.shape
        return states.view(batch, length, self.num_heads, self.head_size).transpose(1, 2)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        encoder_attention_mask: Optional[torch.Tensor] = None,
        past_key_value: Optional[Any] = None,
        output_attentions: bool = False,
    ) -> Tuple[torch.Tensor]:
        """
        # Parameters

        hidden_states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        attention_mask : `torch.Tensor`, optional, shape `(batch_size, 1, 1 or seq_len, seq_len)`
            Additive bias (0 = attend, the dtype's minimum = do not), as `core.masks` makes it.

        The remaining arguments are those HuggingFace layers pass; the core never sets them.

        # Returns

        `(context,)`, context of shape `(batch_size, seq_len, hidden_size)`.
        """
        if head_mask is not None or encoder_hidden_states is not None or past_key_value is not None \
                or output_attentions:
            raise ValueError(
                "LeanSelfAttention is the encoder self-attention of late-prompt stacks: head_mask, "
                "cross-attention, past_key_value and output_attentions are not supported"
            )
        query = self._heads(self.query(hidden_states))
        key = self._heads(self.key(hidden_states))
        value = self._heads(self.value(hidden_states))
        p = self.dropout_p if self.training else 0.0
        if p > 0.0 and hidden_states.device.type == "cpu":
            scores = torch.matmul(query, key.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_size))
            if attention_mask is not None:
                scores = scores + attention_mask
            probabilities = dropout(scores.softmax(dim=-1), p, training=True)
            context = torch.matmul(probabilities.to(value.dtype), value)
        else:
            context = torch.nn.functional.scaled_dot_product_attention(
                query, key, value, attn_mask=attention_mask, dropout_p=p
            )
        batch, _, length, _ = context.shape
        return (context.transpose(1, 2).reshape(batch, length, self.num_heads * self.head_size),)
