from typing import Dict, List, Optional

import torch
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from allennlp_lpt.core import LowerStack
from allennlp_lpt.core.backbone import parse_backbone_dtype
from allennlp_lpt.core.masks import check_right_padded
from allennlp_lpt.core.cache import LowerStateCache, weights_fingerprint
from allennlp_lpt.modules import pairing


@TokenEmbedder.register("late_prompt_transformer")
class LatePromptTransformerEmbedder(TokenEmbedder, pairing.PairedHalf):
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
    cache_memory_mb : `float`, optional (default = `2048`)
        The budget for cached states on the compute device (GPU memory in a CUDA run).
    cache_host_memory_mb : `float`, optional (default = `0`)
        In a CUDA run, a further budget in pinned host memory, read back asynchronously.
    cache_dir : `str`, optional
        Where states go once the memory budget is spent (kept between runs; entries are keyed
        by model, prompt layer, weights and text, so a stale entry is never reused).
    cache_float16 : `bool`, optional (default = `False`)
        Store cached states in float16 (half the memory, rounding of about 1e-3 relative).
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

    @property
    def family(self):
        return self.stack.family

    def get_output_dim(self) -> int:
        return self.stack.hidden_size

    def train(self, mode: bool = True) -> "LatePromptTransformerEmbedder":
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
    ) -> torch.Tensor:  # type: ignore
        """
        # Parameters

        token_ids : `torch.LongTensor`, shape `(batch_size, num_wordpieces)`
        mask : `torch.BoolTensor`, shape `(batch_size, num_wordpieces)`
        type_ids : `torch.LongTensor`, optional, shape `(batch_size, num_wordpieces)`
        segment_concat_mask : not supported (the indexer's `max_length` folding would split
            instances into segments that the prompt cannot span).

        # Returns

        `torch.Tensor`, shape `(batch_size, num_wordpieces, hidden_size)`, with no grad_fn.
        """
        self.check_pairing_once()
        check_right_padded(mask, where="late_prompt_transformer")
        if segment_concat_mask is not None:
            raise ValueError(
                "late_prompt_transformer does not support the indexer's max_length folding; "
                "remove max_length from the pretrained_transformer indexer and truncate in the "
                "dataset reader instead."
            )
        if self._cache_settings is None:
            return self.stack(token_ids, mask, type_ids)
        return self._cached(token_ids, mask.bool(), type_ids)

    @property
    def cache(self) -> Optional[LowerStateCache]:
        """The store used in the current conditions (precision, mode) on the stack's device."""
        if self._cache_settings is None:
            return None
        return self._cache_for(next(self.stack.parameters()).device.type)

    def _cache_for(self, device_type: str) -> LowerStateCache:
        """
        The store for the states computed now: everything that decides them besides the input
        is in its namespace (model, prompt layer, a fingerprint of the weights, the precision
        they are computed in, under autocast or not, and the lower layers' train/eval mode), so
        that an fp32 run and a mixed-precision run sharing a `cache_dir` never read each other's
        states. Built on first use, after an archive's weights are loaded into the stack.
        """
        if torch.is_autocast_enabled(device_type):
            precision = f"autocast-{torch.get_autocast_dtype(device_type)}"
        else:
            precision = str(next(self.stack.parameters()).dtype)
        mode = "dropout" if self.stack.training else "eval"
        condition = f"{precision}|lower={mode}"
        cache = self._caches.get(condition)
        if cache is None:
            assert self._cache_settings is not None
            namespace = (
                f"{self.model_name}|{self.prompt_layer}|{weights_fingerprint(self.stack)}|{condition}"
            )
            cache = self._caches[condition] = LowerStateCache(namespace, **self._cache_settings)
        return cache

    def _cached(
        self, token_ids: torch.Tensor, mask: torch.Tensor, type_ids: Optional[torch.Tensor]
    ) -> torch.Tensor:
        cache = self._cache_for(token_ids.device.type)
        batch, length = token_ids.shape
        device = token_ids.device
        # One copy to the host for the whole batch: the keys are hashed there.
        host = torch.stack(
            [token_ids, mask.long()] + ([] if type_ids is None else [type_ids])
        ).cpu()
        ids_cpu, mask_cpu = host[0], host[1].bool()
        types_cpu = None if type_ids is None else host[2]
        lengths = mask_cpu.sum(dim=1).tolist()
        keys = [
            cache.key(ids_cpu[row, :n], None if types_cpu is None else types_cpu[row, :n])
            for row, n in enumerate(lengths)
        ]
        found: List[Optional[torch.Tensor]] = [
            cache.get(key, length=n, hidden_size=self.get_output_dim())
            for key, n in zip(keys, lengths)
        ]
        missing = [row for row, states in enumerate(found) if states is None]
        if missing:
            rows = torch.tensor(missing, device=device)
            computed = self.stack(
                token_ids[rows], mask[rows], None if type_ids is None else type_ids[rows]
            )
            for position, row in enumerate(missing):
                states = computed[position, : lengths[row]]  # right-padded: a slice, no mask
                cache.put(keys[row], states)
                found[row] = states
        # The dtype the states were computed in (stored so), or the weights' for float16 storage.
        dtype = next(self.stack.parameters()).dtype if cache.dtype is not None else found[0].dtype  # type: ignore[union-attr]
        # One scatter of all rows' states into the padded output, at positions computed on the
        # host: no boolean indexing (which would wait for the device).
        flat = torch.cat([states.to(device=device, dtype=dtype, non_blocking=True) for states in found])  # type: ignore[union-attr]
        positions = torch.cat([row * length + torch.arange(n) for row, n in enumerate(lengths)])
        output = torch.zeros(batch * length, self.get_output_dim(), dtype=dtype, device=device)
        output.index_copy_(0, positions.to(device, non_blocking=True), flat)
        return output.view(batch, length, -1)
