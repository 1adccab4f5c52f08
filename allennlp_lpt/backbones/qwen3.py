"""
Qwen3 decoders: the Llama family's layout (rotary positions, grouped-query attention, RMSNorm,
`model.layers`, a final `model.norm`) with QK-norm: an RMSNorm over each head's queries and
keys, before the rotation. `head_dim` may differ from `hidden_size / num_attention_heads`.

Prompt positions are the Llama family's: the real tokens keep their positions and the prompt
sits at `-n .. -1`, right before them, which rotary attention sees as a sequence that begins
with the prompt. The norms act on each position's own heads, so they need nothing more.
"""
from typing import Tuple

import torch
from transformers import PretrainedConfig

from allennlp_lpt.backbones.llama import LeanRotaryAttention, LlamaFamily
from allennlp_lpt.core.family import register_family, swap_module


class LeanQKNormAttention(LeanRotaryAttention):
    """
    `LeanRotaryAttention` with Qwen3's `q_norm` and `k_norm` (HF's own RMSNorm modules over
    `head_dim`, shared, not copied) applied to every head's queries and keys before rotary.

    # Parameters

    hf : `torch.nn.Module`
        HF's `Qwen3Attention` (any implementation).
    """

    def __init__(self, hf: torch.nn.Module) -> None:
        super().__init__(hf)
        self.q_norm, self.k_norm = hf.q_norm, hf.k_norm

    def project(self, hidden_states: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As `LeanRotaryAttention.project`, queries and keys normalised per head (over the last,
        `head_size`, dimension, as HF normalises them before moving the heads forward)."""
        query, key, value = super().project(hidden_states)
        return self.q_norm(query), self.k_norm(key), value


@register_family
class Qwen3Family(LlamaFamily):
    name = "qwen3"
    model_types = ("qwen3",)
    # Qwen3's config lists every layer's attention kind: all full attention is accepted (the
    # core's check), sliding windows on some layers are refused.
    attention_modules = ("q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm")

    @classmethod
    def prepare_layers(cls, layers: torch.nn.ModuleList, config: PretrainedConfig) -> None:
        for layer in layers:
            swap_module(layer, "self_attn", LeanQKNormAttention(layer.self_attn))
