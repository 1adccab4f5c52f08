import logging
from typing import Dict, List, Optional, Tuple

import torch
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from allennlp_lpt.core import LowerStack
from allennlp_lpt.core.masks import Layout, check_right_padded
from allennlp_lpt.core.stacks import LowerStates
from allennlp_lpt.core.backbone import parse_backbone_dtype
from allennlp_lpt.core.cache import (
    LowerStateCache,
    RowKeys,
    check_cache_dir,
    instance_key,
    weights_fingerprint,
)
from allennlp_lpt.core.checks import BatchCheck
from allennlp_lpt.modules.halves import LowerHalf
from allennlp_lpt.option_types import TypedOptions

logger = logging.getLogger(__name__)


@TokenEmbedder.register("late_prompt_transformer")
class LatePromptTransformerEmbedder(TypedOptions, TokenEmbedder, LowerHalf):
    """
    The frozen part of a late-prompt backbone: the embeddings and the layers below the prompt
    layer, run without an autograd graph (they train nothing and keep no activations). Its
    output is the layer-`prompt_layer` states that a `late_prompt_roberta` or `late_prompt_gpt2`
    encoder turns into a prompt and runs through the layers above.

    Registered as a `TokenEmbedder` with name "late_prompt_transformer". Use it with a
    `pretrained_transformer` indexer (or the `lpt_*` readers) of the same model.

    # Parameters

    model_name : `str`
        A HuggingFace model folder or hub name of a supported family: BERT-like encoders (BERT,
        MiniLM, RoBERTa, XLM-RoBERTa, CamemBERT), GPT-2, Llama-family decoders (Llama, Mistral,
        Qwen2).
    prompt_layer : `int`
        How many backbone layers run before the prompt is inserted (k in the paper; 0 means
        input-level prompt tuning). Must equal the encoder's.
    lower_dropout : `bool`, optional (default = `True`)
        Whether dropout stays active in these frozen layers during training, as in the authors'
        code (the whole model in train mode). `False` runs them in eval mode, which makes their
        output a deterministic function of the input.
    cache : `bool`, optional (default = `False`)
        Store each instance's states the first time it is seen and reuse them afterwards, so
        later epochs skip the lower layers entirely. The lower layers then run in eval mode (no
        dropout there), which is what makes reuse exact; the authors' setting keeps that
        dropout on, so a cached run is the `lower_dropout: false` variant of theirs.
        With the reader's `cache_keys: true` each batch brings its rows' keys, computed on the
        host, and a step whose states are all stored reads nothing back from the GPU;
        without them the embedder copies the batch's token ids to the host to key them (one
        wait for the GPU per batch).
    cache_memory_mb : `float`, optional (default = `2048`)
        The budget for cached states on the compute device (GPU memory in a CUDA run). Their
        arena grows by doubling; while it grows, the old and the new one are both held (at
        most 1.5 times the budget, for a moment).
    cache_host_memory_mb : `float`, optional (default = `0`)
        In a CUDA run, a further budget in pinned host memory, read back asynchronously.
    cache_dir : `str`, optional
        Where states go once the memory budget is spent (kept between runs). Entries are keyed
        by model, prompt layer, text, the precision and mode the layers run in, the model's
        config and a SHA-1 of every byte of the lower layers' weights and buffers, taken when
        the store is built (32 ms for all-MiniLM-L6-v2 at prompt layer 3 on a 2-core CPU; on a
        GPU the weights are copied to the host for it, once per 256 MiB), so a stale entry is
        never reused. It must be writable (created where missing; checked when the embedder
        is built); a write that fails later (a full disk) stops storing there for the run,
        with one warning, and the states not stored are computed again.
    cache_float16 : `bool`, optional (default = `False`)
        Store cached states in 16 bits (half the memory of float32 states): in bfloat16 where
        the backbone's weights are bfloat16 (`backbone_dtype`), whose states may exceed
        float16's range (65504), else in float16 (rounding of about 1e-3 relative; states past
        65504 would become infinite there).
    backbone_dtype : `str`, optional (default = `"float32"`)
        The dtype the frozen backbone's weights are stored in: `"float32"`, `"bfloat16"` or
        `"float16"`. With a 16-bit dtype the weights take half the memory and mixed-precision
        training (`use_amp`) has nothing to re-cast at every step; the generator and any head
        stay float32. Must equal the encoder's.
    compile : `bool`, optional (default = `False`)
        Run the lower stack through `torch.compile` (see `LowerStack.compile`).
    compile_backend : `str`, optional (default = `"inductor"`)
    save_backbone : `bool`, optional (default = `True`)
        `False` leaves the frozen pretrained weights out of archives and checkpoints: loading
        rebuilds them from `model_name` (a lightweight archive).
    """

    def __init__(
        self,
        model_name: str,
        *,
        prompt_layer: int,
        lower_dropout: bool = True,
        cache: bool = False,
        cache_memory_mb: float = 2048.0,
        cache_host_memory_mb: float = 0.0,
        cache_dir: Optional[str] = None,
        cache_float16: bool = False,
        backbone_dtype: str = "float32",
        compile: bool = False,
        compile_backend: str = "inductor",
        save_backbone: bool = True,
    ) -> None:
        super().__init__()
        self.model_name = model_name
        self.prompt_layer = prompt_layer
        self.lower_dropout = lower_dropout and not cache
        self.backbone_dtype = backbone_dtype
        if cache and cache_dir is not None:
            check_cache_dir(cache_dir)  # now, not at the first entry stored
        self.stack = LowerStack(
            model_name, prompt_layer, dtype=parse_backbone_dtype(backbone_dtype)
        )
        self.stack.save_weights = save_backbone
        if compile:
            self.stack.compile(backend=compile_backend)
        self._cache_settings = (
            dict(memory_mb=cache_memory_mb, host_memory_mb=cache_host_memory_mb,
                 directory=cache_dir, float16=cache_float16)
            if cache
            else None
        )
        # One store per computing condition (see `_cache_for`).
        self._caches: Dict[str, LowerStateCache] = {}
        # Loaded weights may differ from those the stores' fingerprints were taken of.
        self.register_load_state_dict_post_hook(LatePromptTransformerEmbedder._forget_cached_states)
        self._padding_check = BatchCheck()
        self._warned_unkeyed = False

    @staticmethod
    def _forget_cached_states(module: "LatePromptTransformerEmbedder", incompatible_keys: object) -> None:
        """After `load_state_dict`: the stores start again, under a fingerprint of the weights
        now loaded (entries on disk of the same weights are found again)."""
        module._caches.clear()

    @property
    def family(self):
        return self.stack.family

    def get_output_dim(self) -> int:
        return self.stack.hidden_size

    def train(self, mode: bool = True) -> "LatePromptTransformerEmbedder":
        self._padding_check.flush()  # an epoch's end: every batch's verdict is read by now
        super().train(mode)
        if not self.lower_dropout:
            self.stack.eval()
        return self

    def forward(
        self,
        token_ids: torch.LongTensor,
        mask: torch.BoolTensor,
        type_ids: Optional[torch.LongTensor] = None,
        segment_concat_mask: Optional[torch.BoolTensor] = None,
        row_keys: Optional[RowKeys] = None,
        lower_states: Optional[LowerStates] = None,
    ) -> torch.Tensor:  # type: ignore
        """
        # Parameters

        token_ids : `torch.LongTensor`, shape `(batch_size, num_wordpieces)`
        mask : `torch.BoolTensor`, shape `(batch_size, num_wordpieces)`
        type_ids : `torch.LongTensor`, optional, shape `(batch_size, num_wordpieces)`
        segment_concat_mask : not supported (the indexer's `max_length` folding would split
            instances into segments that the prompt cannot span).
        row_keys : `RowKeys`, optional
            Each row's cache key and length, computed on the host by the reader (`cache_keys`).
            The mask then comes from the same indexer, so it is right-padded by construction
            and is not checked again.
        lower_states : `LowerStates`, optional
            The output of an earlier layer for this very batch, computed once for several
            models of this backbone (`MultiTaskPredictor`): only the layers from there to the
            prompt layer run (no cache).

        # Returns

        `torch.Tensor`, shape `(batch_size, num_wordpieces, hidden_size)`, with no grad_fn.
        """
        if row_keys is None:
            check_right_padded(mask, where="late_prompt_transformer", check=self._padding_check)
        elif len(row_keys.keys) != token_ids.size(0) or max(row_keys.lengths) > token_ids.size(1):
            raise ValueError(
                f"late_prompt_transformer: row_keys for {len(row_keys.keys)} rows of up to "
                f"{max(row_keys.lengths)} tokens came with token_ids of shape "
                f"{tuple(token_ids.shape)}; they must come from the same text field."
            )
        if segment_concat_mask is not None:
            raise ValueError(
                "late_prompt_transformer does not support the indexer's max_length folding; "
                "remove max_length from the pretrained_transformer indexer and truncate in the "
                "dataset reader instead."
            )
        if lower_states is not None:
            if lower_states.states.shape[:2] != token_ids.shape or lower_states.layer > self.prompt_layer:
                raise ValueError(
                    f"late_prompt_transformer: lower_states of layer {lower_states.layer} and "
                    f"shape {tuple(lower_states.states.shape)} do not fit token_ids of shape "
                    f"{tuple(token_ids.shape)} and prompt_layer {self.prompt_layer}."
                )
            return self.stack.continue_from(lower_states.states, mask, lower_states.layer)
        if self._cache_settings is None:
            return self.stack(token_ids, mask, type_ids)
        return self._cached(token_ids, mask.bool(), type_ids, row_keys)

    def embed_layout(
        self, token_ids: torch.Tensor, mask: torch.Tensor, layout: Layout
    ) -> torch.Tensor:
        """
        The layer-`prompt_layer` states of a sequence with an explicit `Layout` (causal
        families; generative scoring's shared context), without the cache.

        # Parameters

        token_ids : `torch.LongTensor`, shape `(batch_size, seq_len)`
        mask : `torch.BoolTensor`, shape `(batch_size, seq_len)`
        layout : `Layout`

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`, with no grad_fn.
        """
        return self.stack(token_ids, mask, layout=layout)

    @property
    def cache(self) -> Optional[LowerStateCache]:
        """The store used in the current conditions (precision, mode) on the stack's device."""
        if self._cache_settings is None:
            return None
        return self._cache_for(next(self.stack.parameters()).device.type)

    def _cache_for(self, device_type: str) -> LowerStateCache:
        """
        The store for the states computed now: everything that decides them besides the input
        is in its namespace (model, its config, prompt layer, a digest of every byte of the
        weights, the precision they are computed in, under autocast or not, and the lower
        layers' train/eval mode), so that an fp32 run and a mixed-precision run sharing a
        `cache_dir` never read each other's states. Built on first use, after an archive's
        weights are loaded into the stack; with `cache_float16` it stores the weights' 16-bit
        type (bfloat16 for bfloat16 weights, else float16).
        """
        if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
            precision = f"autocast-{torch.get_autocast_dtype(device_type)}"
        else:
            precision = str(next(self.stack.parameters()).dtype)
        mode = "dropout" if self.stack.training else "eval"
        condition = f"{precision}|lower={mode}"
        cache = self._caches.get(condition)
        if cache is None:
            assert self._cache_settings is not None
            settings = dict(self._cache_settings)
            weights_dtype = next(self.stack.parameters()).dtype
            if settings.pop("float16"):
                # A bf16 backbone's states have bf16's range, which float16 does not cover.
                settings["dtype"] = torch.bfloat16 if weights_dtype == torch.bfloat16 else torch.float16
            namespace = (
                f"{self.model_name}|{self.prompt_layer}|{weights_fingerprint(self.stack)}|"
                f"{self.stack.config.to_json_string()}|{condition}"
            )
            cache = self._caches[condition] = LowerStateCache(namespace, **settings)
        return cache

    def _cached(
        self,
        token_ids: torch.Tensor,
        mask: torch.Tensor,
        type_ids: Optional[torch.Tensor],
        row_keys: Optional[RowKeys],
    ) -> torch.Tensor:
        cache = self._cache_for(token_ids.device.type)
        if row_keys is None:
            keys, lengths = self._keys_from_batch(token_ids, mask, type_ids)
        else:
            keys, lengths = list(row_keys.keys), list(row_keys.lengths)

        def compute(rows: torch.Tensor) -> torch.Tensor:
            return self.stack(
                token_ids.index_select(0, rows),
                mask.index_select(0, rows),
                None if type_ids is None else type_ids.index_select(0, rows),
            )

        return cache.batch_states(
            keys,
            lengths,
            token_ids.size(1),
            compute=compute,
            device=token_ids.device,
            hidden_size=self.get_output_dim(),
        )

    def _keys_from_batch(
        self, token_ids: torch.Tensor, mask: torch.Tensor, type_ids: Optional[torch.Tensor]
    ) -> Tuple[List[str], List[int]]:
        """Each row's key and length from the batch itself: one copy to the host (on a GPU,
        a wait for it), which the reader's `cache_keys` avoids."""
        if token_ids.device.type == "cuda" and not self._warned_unkeyed:
            logger.info(
                "late_prompt_transformer: batches carry no cache keys, so each step copies its "
                "token ids to the host to key them (a wait for the GPU). Set cache_keys: true "
                "on the lpt_tsv / lpt_task dataset reader to avoid it."
            )
            self._warned_unkeyed = True
        host = torch.stack([token_ids, mask.long()] + ([] if type_ids is None else [type_ids])).cpu()
        ids, types = host[0].numpy(), None if type_ids is None else host[2].numpy()
        lengths = host[1].sum(dim=1).tolist()
        keys = [
            instance_key(ids[row, :n], None if types is None else types[row, :n])
            for row, n in enumerate(lengths)
        ]
        return keys, lengths
