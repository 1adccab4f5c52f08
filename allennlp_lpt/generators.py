"""
Prompt generators: what produces the `n` prompt vectors inserted after the prompt layer.

`npg`, `mppg` and `appg` are the paper's instance-aware generators (a different prompt for every
instance, computed from the frozen layer-k states); `static` is a trainable prompt shared by all
instances (the ablation, and classic prompt tuning when inserted at layer 0). All of them are
vectorised over the batch: no per-example Python loop, and padding never enters a pooling bin.
"""
from typing import Optional

import torch
from allennlp.common import Registrable
from allennlp.common.checks import ConfigurationError

from allennlp_lpt.option_types import TypedOptions


class PromptGenerator(TypedOptions, torch.nn.Module, Registrable):
    """
    Produces the prompt for a batch.

    Registered subclasses receive `hidden_size` and `prompt_length` from the encoder that owns
    them (configs give them as `Lazy`), and `dropout` defaults to the backbone's hidden dropout.

    # Parameters

    hidden_size : `int`
        The backbone's hidden size H.
    prompt_length : `int`
        How many prompt vectors n to produce.
    """

    # Whether the prompt depends on the instance (False only for `static`).
    instance_aware: bool = True

    def __init__(self, hidden_size: int, prompt_length: int) -> None:
        super().__init__()
        if prompt_length < 1:
            raise ConfigurationError(
                f"prompt_length={prompt_length}: a prompt needs at least 1 vector (valid: >= 1)."
            )
        if hidden_size < 1:
            raise ConfigurationError(f"hidden_size={hidden_size} must be >= 1.")
        self.hidden_size = hidden_size
        self.prompt_length = prompt_length

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor, anchor: torch.Tensor
    ) -> torch.Tensor:
        """
        # Parameters

        states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
            The frozen output of the prompt layer.
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
            The tokens the generator may read (real tokens; for GPT-2 scoring, the context only).
        anchor : `torch.LongTensor`, shape `(batch_size,)`
            The one position the naive generator reads.

        # Returns

        `torch.Tensor`, shape `(batch_size, prompt_length, hidden_size)`.
        """
        raise NotImplementedError


def _check_bottleneck(bottleneck: int) -> None:
    if bottleneck < 1:
        raise ConfigurationError(f"generator.bottleneck={bottleneck} must be >= 1.")


def _resolve_dropout(dropout: Optional[float], default_dropout: float) -> float:
    value = default_dropout if dropout is None else dropout
    if not 0.0 <= value < 1.0:
        raise ConfigurationError(f"generator.dropout={value} must be in [0, 1).")
    return value


class _BottleneckPromptGenerator(PromptGenerator):
    """
    What the paper's generators share: Linear(H, d), a Linear out of the bottleneck whose width
    `up_features` each one sets, and dropout on the prompt.
    """

    def __init__(
        self,
        hidden_size: int,
        prompt_length: int,
        *,
        bottleneck: int = 128,
        dropout: Optional[float] = None,
        default_dropout: float = 0.1,
    ) -> None:
        super().__init__(hidden_size, prompt_length)
        _check_bottleneck(bottleneck)
        self.down = torch.nn.Linear(hidden_size, bottleneck)
        self.up = torch.nn.Linear(bottleneck, self.up_features())
        self.dropout = torch.nn.Dropout(_resolve_dropout(dropout, default_dropout))

    def up_features(self) -> int:
        raise NotImplementedError


@PromptGenerator.register("npg")
class NaivePromptGenerator(_BottleneckPromptGenerator):
    """
    NPG: one token's state (`anchor`) -> Linear(H, d) -> ReLU -> Linear(d, n*H) -> reshape to
    `(batch, n, H)` -> dropout.

    # Parameters

    bottleneck : `int`, optional (default = `128`)
        The width d.
    dropout : `float`, optional (default = the backbone's hidden dropout)
    """

    def up_features(self) -> int:
        return self.prompt_length * self.hidden_size

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor, anchor: torch.Tensor
    ) -> torch.Tensor:
        index = anchor.view(-1, 1, 1).expand(-1, 1, states.size(-1))
        summary = states.gather(1, index).squeeze(1)  # (batch, H)
        prompt = self.up(torch.relu(self.down(summary)))
        return self.dropout(prompt.view(-1, self.prompt_length, self.hidden_size))


def pooling_bins(mask: torch.Tensor, bins: int) -> torch.Tensor:
    """
    Which real tokens fall in which adaptive-pooling bin.

    Bin i of an example with L real tokens covers its real tokens floor(i*L/n) .. ceil((i+1)*L/n)-1
    (counted among real tokens only), exactly as torch's AdaptiveMaxPool1d / AdaptiveAvgPool1d
    define them on the unpadded sequence; bins may overlap.

    # Parameters

    mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
    bins : `int`

    # Returns

    `torch.BoolTensor`, shape `(batch_size, bins, seq_len)`.
    """
    mask = mask.bool()
    rank = mask.long().cumsum(dim=1) - 1  # index of each real token among the real tokens
    length = mask.sum(dim=1, keepdim=True)  # (batch, 1)
    index = torch.arange(bins, device=mask.device)[None, :]  # (1, bins)
    start = torch.div(index * length, bins, rounding_mode="floor")
    end = torch.div((index + 1) * length + bins - 1, bins, rounding_mode="floor")
    inside = (rank[:, None, :] >= start[:, :, None]) & (rank[:, None, :] < end[:, :, None])
    return inside & mask[:, None, :]


class _PoolingPromptGenerator(_BottleneckPromptGenerator):
    """Linear(H, d) on every real token -> adaptive pooling to n bins -> ReLU -> Linear(d, H) -> dropout."""

    def up_features(self) -> int:
        return self.hidden_size

    def pool(self, projected: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
        """`(batch, seq_len, d)`, `(batch, n, seq_len)` -> `(batch, n, d)`."""
        raise NotImplementedError

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor, anchor: torch.Tensor
    ) -> torch.Tensor:
        projected = self.down(states)
        pooled = self.pool(projected, pooling_bins(mask, self.prompt_length))
        return self.dropout(self.up(torch.relu(pooled)))


@PromptGenerator.register("mppg")
class MaxPoolingPromptGenerator(_PoolingPromptGenerator):
    """MPPG: adaptive max pooling. Parameters as for `appg`."""

    def pool(self, projected: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
        candidates = projected[:, None, :, :].masked_fill(
            ~bins[..., None], torch.finfo(projected.dtype).min
        )
        pooled = candidates.amax(dim=2)
        # An example with no real token would pool to the dtype's minimum: make it zero.
        return pooled.masked_fill(~bins.any(dim=2, keepdim=True), 0.0)


@PromptGenerator.register("appg")
class AveragePoolingPromptGenerator(_PoolingPromptGenerator):
    """
    APPG: adaptive average pooling.

    # Parameters

    bottleneck : `int`, optional (default = `128`)
    dropout : `float`, optional (default = the backbone's hidden dropout)
    """

    def pool(self, projected: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
        weights = bins.to(projected.dtype)
        counts = weights.sum(dim=2, keepdim=True).clamp(min=1.0)
        return torch.bmm(weights, projected) / counts


@PromptGenerator.register("static")
class StaticPromptGenerator(PromptGenerator):
    """
    A trainable `(n, H)` prompt, the same for every instance (prompt tuning when inserted at
    layer 0; the non-instance-aware ablation elsewhere).

    # Parameters

    init_std : `float`, optional (default = `0.02`)
        Standard deviation of the normal initialisation (BERT/RoBERTa/GPT-2's initializer range).
    """

    instance_aware = False

    def __init__(
        self,
        hidden_size: int,
        prompt_length: int,
        *,
        init_std: float = 0.02,
    ) -> None:
        super().__init__(hidden_size, prompt_length)
        self.prompt = torch.nn.Parameter(torch.randn(prompt_length, hidden_size) * init_std)

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor, anchor: torch.Tensor
    ) -> torch.Tensor:
        return self.prompt[None].expand(states.size(0), -1, -1)
