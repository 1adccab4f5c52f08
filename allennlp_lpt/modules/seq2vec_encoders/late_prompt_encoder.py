from typing import ClassVar, Optional, Type

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.lazy import Lazy
from allennlp.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder

from allennlp_lpt.core import UpperStack
from allennlp_lpt.core.backbone import parse_backbone_dtype
from allennlp_lpt.core.checks import BatchCheck
from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.core.masks import Layout, check_right_padded
from allennlp_lpt.generators import NaivePromptGenerator, PromptGenerator
from allennlp_lpt.modules.halves import UpperHalf
from allennlp_lpt.option_types import TypedOptions


def encoder_for(family: Type[BackboneFamily]) -> str:
    """The registered encoder that serves `family`: one for bidirectional encoders, one for
    causal decoders (`late_prompt_gpt2` is the latter's name in GPT-2 configs)."""
    return "late_prompt_causal" if family.is_causal else "late_prompt_roberta"


class LatePromptEncoder(TypedOptions, Seq2VecEncoder, UpperHalf):
    """
    The trainable part of a late-prompt backbone: a prompt generator reads the frozen
    layer-`prompt_layer` states (from a `late_prompt_transformer` embedder of the same model),
    its prompt is prepended, and the frozen layers above run over [prompt; states]. Subclasses
    serve one kind of backbone and say how the final states become one vector.

    # Parameters

    model_name : `str`
        The same model as the embedder's.
    prompt_layer : `int`
        The same prompt layer as the embedder's.
    prompt_length : `int`, optional (default = `5`)
        How many prompt vectors are inserted (n; the authors' runs use 5).
    generator : `Lazy[PromptGenerator]`, optional (default = `npg`)
        Built with this backbone's hidden size, `prompt_length`, and the backbone's hidden
        dropout as its default dropout. At `prompt_layer` 0 only `static` is allowed.
    backbone_dtype : `str`, optional (default = `"float32"`)
        The dtype of the frozen backbone's weights (see `late_prompt_transformer`); must equal
        the embedder's. The generator stays float32: it reads the states cast to its own dtype,
        and the pooled vector comes back in that dtype too.
    compile : `bool`, optional (default = `False`)
        Run the upper stack (prompt insertion, layers, final norm) through `torch.compile`
        (see `UpperStack.compile`); the generator and AllenNLP's metrics stay eager.
    compile_backend : `str`, optional (default = `"inductor"`)
    save_backbone : `bool`, optional (default = `True`)
        `False` leaves the frozen layers out of archives (see `late_prompt_transformer`).
    """

    # The registered name of the subclass.
    encoder_type: ClassVar[str]

    @classmethod
    def serves(cls, family: Type[BackboneFamily]) -> bool:
        """Whether this encoder runs models of `family` (the subclasses say)."""
        raise NotImplementedError

    def __init__(
        self,
        model_name: str,
        *,
        prompt_layer: int,
        prompt_length: int = 5,
        generator: Lazy[PromptGenerator] = Lazy(NaivePromptGenerator),
        backbone_dtype: str = "float32",
        compile: bool = False,
        compile_backend: str = "inductor",
        save_backbone: bool = True,
    ) -> None:
        super().__init__()
        if prompt_length < 1:
            raise ConfigurationError(
                f"prompt_length={prompt_length}: a prompt needs at least 1 vector (valid: >= 1)."
            )
        self.model_name = model_name
        self.prompt_layer = prompt_layer
        self.prompt_length = prompt_length
        self.backbone_dtype = backbone_dtype
        # On a GPU these read their verdicts back a step later instead of waiting for them.
        self._padding_check = BatchCheck()
        self._generator_mask_check = BatchCheck()
        self.upper = UpperStack(model_name, prompt_layer, dtype=parse_backbone_dtype(backbone_dtype))
        self.upper.save_weights = save_backbone
        if compile:
            self.upper.compile(backend=compile_backend)
        family = self.upper.family
        if not self.serves(family):
            raise ConfigurationError(
                f"{self.encoder_type} cannot run {model_name!r}, a {family.name} model: use "
                f"the {encoder_for(family)!r} encoder for it."
            )
        self.generator = generator.construct(
            hidden_size=self.upper.hidden_size,
            prompt_length=prompt_length,
            default_dropout=family.hidden_dropout(self.upper.config),
        )
        if self.generator.prompt_length != prompt_length:
            raise ConfigurationError(
                f"generator.prompt_length={self.generator.prompt_length} differs from the "
                f"encoder's prompt_length={prompt_length}: set it on the encoder only."
            )
        if prompt_layer == 0 and self.generator.instance_aware:
            raise ConfigurationError(
                "prompt_layer=0 is input-level prompt tuning: nothing has run yet for an "
                "instance-aware generator to read. Use generator {'type': 'static'} there, or a "
                "prompt_layer of 1 or more."
            )

    @property
    def family(self):
        return self.upper.family

    def train(self, mode: bool = True) -> "LatePromptEncoder":
        # An epoch's end: every batch's padding verdict is read by now.
        self._padding_check.flush()
        self._generator_mask_check.flush()
        return super().train(mode)

    def get_input_dim(self) -> int:
        return self.upper.hidden_size

    def get_output_dim(self) -> int:
        return self.upper.hidden_size

    def encode_tokens(
        self,
        states: torch.Tensor,
        mask: torch.BoolTensor,
        generator_mask: Optional[torch.BoolTensor] = None,
    ) -> torch.Tensor:
        """
        Generates the prompt and runs the layers above the prompt layer.

        # Parameters

        states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
            The embedder's output (layer `prompt_layer`).
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        generator_mask : `torch.BoolTensor`, optional, shape `(batch_size, seq_len)`
            The tokens the generator may read (default: `mask`). Generative scoring passes the
            context only, so that the answer never leaks into the prompt.

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`: the final states of the real
        positions (indices are those of the input; the prompt positions are dropped).
        """
        if states.size(-1) != self.upper.hidden_size:
            raise ValueError(
                f"{self.encoder_type} expects states of width {self.upper.hidden_size} from a "
                f"late_prompt_transformer embedder of {self.model_name!r}, got "
                f"{states.size(-1)}."
            )
        mask = mask.bool()
        check_right_padded(mask, where=self.encoder_type, check=self._padding_check)
        readable = mask if generator_mask is None else generator_mask.bool()
        if generator_mask is not None:
            check_right_padded(
                readable, where=f"{self.encoder_type} (generator_mask)", check=self._generator_mask_check
            )
        # The generator reads the states in its own dtype (float32 beside a 16-bit backbone).
        prompt = self.generator(
            states.to(self.trainable_dtype), readable, self.family.anchor_positions(readable)
        )
        return self.upper(states, mask, prompt)

    def encode_layout(
        self,
        states: torch.Tensor,
        mask: torch.BoolTensor,
        generator_mask: torch.BoolTensor,
        layout: Layout,
    ) -> torch.Tensor:
        """
        `encode_tokens` over an explicit `Layout` (causal families): the generator reads the
        tokens of `generator_mask` (right-padded: the shared context), the upper layers run
        with the layout's positions and visibility.

        # Parameters

        states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
            The real slots (need not be right-padded: the layout says who sees whom).
        generator_mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        layout : `Layout`

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`.
        """
        readable = generator_mask.bool()
        check_right_padded(
            readable, where=f"{self.encoder_type} (generator_mask)", check=self._generator_mask_check
        )
        prompt = self.generator(
            states.to(self.trainable_dtype), readable, self.family.anchor_positions(readable)
        )
        return self.upper(states, mask.bool(), prompt, layout=layout)

    @property
    def trainable_dtype(self) -> torch.dtype:
        """The dtype of the generator's parameters (float32 unless the model was cast)."""
        parameter = next(self.generator.parameters(), None)
        return torch.float32 if parameter is None else parameter.dtype

    def pool(self, final_states: torch.Tensor, mask: torch.BoolTensor) -> torch.Tensor:
        """`(batch, seq_len, hidden)` final states -> `(batch, hidden)`."""
        raise NotImplementedError

    def forward(self, tokens: torch.Tensor, mask: torch.BoolTensor) -> torch.Tensor:
        """
        # Parameters

        tokens : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
            The `late_prompt_transformer` embedder's output.
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`

        # Returns

        `torch.Tensor`, shape `(batch_size, hidden_size)`.
        """
        # In the trainable dtype, for the head that follows (a no-op with a float32 backbone).
        return self.pool(self.encode_tokens(tokens, mask), mask.bool()).to(self.trainable_dtype)
