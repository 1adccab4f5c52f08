"""
AllenNLP 2.10.1 on transformers 5 and huggingface_hub 1: the repairs that let the stock `allennlp`
command (and `import allennlp`) run on the pinned stack, keeping AllenNLP's behaviour of
transformers 4.x where it had one.

AllenNLP, the last release of which pins transformers < 4.21, breaks on the current stack at
import (names it imports were removed) and at run time (calls whose meaning changed). Each repair
below says what changed and what it does; each applies only where the installed library lacks
what AllenNLP needs, so on an older stack the module changes nothing.

At import:
- `allennlp.common.push_to_hf` imports `HfFolder` and `Repository`, which huggingface_hub 1.0
  removed (`allennlp.common` imports it, so every `import allennlp...` failed). The module now
  loads with stand-ins for the two names, and `push_to_hf` (the `allennlp push-to-hf` command)
  refuses with a ConfigurationError that names the replacement, `huggingface_hub.upload_folder`
  (or `HfApi().upload_folder`): it cloned a git repository through `Repository`, which no longer
  exists.
- `allennlp.training.optimizers` derives its `huggingface_adamw` optimizer from
  `transformers.AdamW`, removed in transformers 5.0. `AdamW` below is transformers 4.x's
  algorithm, ported: the optimizer computes what it computed (not torch's `AdamW`, which adds
  epsilon after the bias correction of the second moment and decays the weights before the step).

At run time:
- `cached_transformers.get_tokenizer` is called by AllenNLP's tokenizer with
  `add_special_tokens=...`, which transformers 4.x stored and ignored and transformers 4.44 and
  later refuse (5.x: "add_special_tokens conflicts with the method"). It is dropped there.
- `encode_plus` (one text or pair, as `__call__` encodes it) is gone from transformers 5's
  tokenizers; AllenNLP's `PretrainedTransformerTokenizer` calls it. It is defined again where
  absent, as `__call__`.
- transformers 5's fast tokenizers (`TokenizersBackend`) lack `build_inputs_with_special_tokens`
  and `create_token_type_ids_from_sequences`, which AllenNLP's `PretrainedTransformerIndexer`
  (with `max_length`) and this package's templates call with token ids. They are defined again
  where absent, through the tokenizer's own post-processor (which inserts the special tokens
  and type ids when it encodes text): transformers 4.x's fast tokenizers returned what their
  post-processors produce (`[CLS] A [SEP] B [SEP]` with type ids 0 then 1 for BERT,
  `<s> A </s></s> B </s>` with type ids 0 for RoBERTa, `A B` with 0 then 1 without one).
- `DataCollatorForLanguageModeling` gained a `whole_word_mask` field before `mlm_probability`;
  AllenNLP's `LanguageModelingDataCollator` passes the probability by position, so it became the
  whole-word switch. AllenNLP's module now builds it with keywords.

How it is loaded: `make install` writes a one-line `.pth` file into the environment's
site-packages that calls `install()` at interpreter start (only if this module can be found),
because the `allennlp` command imports `allennlp.commands` before it reads `--include-package`.
`install()` only puts an import hook in place; each repair runs right after its AllenNLP module
loads. `allennlp_lpt` calls `install()` too, for environments made without the `.pth` file.
This module imports nothing but the standard library until AllenNLP is imported.
"""
import contextlib
import importlib.abc
import importlib.machinery
import math
import sys
import types
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

# The replacement `allennlp push-to-hf` names.
PUSH_TO_HF_REPLACEMENT = (
    "huggingface_hub.upload_folder(repo_id=..., folder_path=<the serialization directory>) "
    "(or HfApi().upload_folder)"
)


def push_to_hf_removed_message() -> str:
    import huggingface_hub

    return (
        f"allennlp push-to-hf cannot run with huggingface_hub {huggingface_hub.__version__}: it "
        f"clones the model repository through huggingface_hub.Repository and reads the token "
        f"through HfFolder, both removed in huggingface_hub 1.0. Upload the serialization "
        f"directory (or the extracted archive) with {PUSH_TO_HF_REPLACEMENT}."
    )


def _refuse_push_to_hf(*args: Any, **kwargs: Any) -> Any:
    from allennlp.common.checks import ConfigurationError

    raise ConfigurationError(push_to_hf_removed_message())


class _RemovedFromHub:
    """Stand-in for a huggingface_hub name AllenNLP imports but that hub 1.0 removed: it loads,
    and any use says what to use instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse_push_to_hf()

    @classmethod
    def get_token(cls) -> Optional[str]:
        return _refuse_push_to_hf()


_ADAMW: Optional[type] = None


def __getattr__(name: str) -> Any:
    # `allennlp_repair.AdamW`, defined on first use: torch is imported only where it is used.
    if name == "AdamW":
        return _adamw_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _adamw_class() -> type:
    """transformers 4.x's `AdamW` (4.43.4, `transformers/optimization.py`), the base class of
    AllenNLP's `huggingface_adamw` optimizer, ported to run where transformers removed it."""
    global _ADAMW
    if _ADAMW is not None:
        return _ADAMW
    import torch

    class AdamW(torch.optim.Optimizer):
        """
        Adam with decoupled weight decay, exactly as transformers 4.x computed it: for each
        parameter `p` with gradient `g` at step `t`,

            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t)   (lr without `correct_bias`)
            p = p - step_size * m / (sqrt(v) + eps)
            p = p - lr * weight_decay * p                         (after the step)

        # Parameters

        params : `Iterable`
            Parameters to optimize or dicts defining parameter groups.
        lr : `float`, optional (default = `1e-3`)
        betas : `Tuple[float, float]`, optional (default = `(0.9, 0.999)`)
        eps : `float`, optional (default = `1e-6`)
            Added to `sqrt(v)` before the bias correction is applied to the step size.
        weight_decay : `float`, optional (default = `0.0`)
        correct_bias : `bool`, optional (default = `True`)
            Whether to correct the bias of the moments (BERT's TF code did not).
        no_deprecation_warning : `bool`, optional (default = `False`)
            Accepted for compatibility; this port does not warn.
        """

        def __init__(
            self,
            params: Any,
            lr: float = 1e-3,
            betas: Tuple[float, float] = (0.9, 0.999),
            eps: float = 1e-6,
            weight_decay: float = 0.0,
            correct_bias: bool = True,
            no_deprecation_warning: bool = False,
        ) -> None:
            if lr < 0.0:
                raise ValueError(f"Invalid learning rate: {lr} - should be >= 0.0")
            if not 0.0 <= betas[0] < 1.0:
                raise ValueError(f"Invalid beta parameter: {betas[0]} - should be in [0.0, 1.0)")
            if not 0.0 <= betas[1] < 1.0:
                raise ValueError(f"Invalid beta parameter: {betas[1]} - should be in [0.0, 1.0)")
            if not 0.0 <= eps:
                raise ValueError(f"Invalid epsilon value: {eps} - should be >= 0.0")
            defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "correct_bias": correct_bias}
            super().__init__(params, defaults)

        @torch.no_grad()
        def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
            loss = None
            if closure is not None:
                loss = closure()
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = p.grad
                    if grad.is_sparse:
                        raise RuntimeError("Adam does not support sparse gradients, please consider SparseAdam instead")
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = 0
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                    beta1, beta2 = group["betas"]
                    state["step"] += 1
                    exp_avg.mul_(beta1).add_(grad, alpha=(1.0 - beta1))
                    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                    denom = exp_avg_sq.sqrt().add_(group["eps"])
                    step_size = group["lr"]
                    if group["correct_bias"]:
                        bias_correction1 = 1.0 - beta1 ** state["step"]
                        bias_correction2 = 1.0 - beta2 ** state["step"]
                        step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
                    p.addcdiv_(exp_avg, denom, value=-step_size)
                    # Decoupled weight decay, after the Adam step (transformers 4.x's order).
                    if group["weight_decay"] > 0.0:
                        p.add_(p, alpha=(-group["lr"] * group["weight_decay"]))
            return loss

    AdamW.__module__ = __name__
    AdamW.__qualname__ = "AdamW"
    _ADAMW = AdamW
    return AdamW


# Token ids no vocabulary has (encodings hold unsigned 32-bit ids): they mark where the first
# and the second sequence go in what a post-processor returns.
_FIRST, _SECOND = 2**32 - 1, 2**32 - 2


def post_processed(
    tokenizer: Any, token_ids_0: Sequence[int], token_ids_1: Optional[Sequence[int]] = None
) -> Tuple[List[int], List[int]]:
    """
    The token ids and type ids that `tokenizer`'s post-processor (a fast tokenizer's, from the
    `tokenizers` library) makes of one sequence of token ids, or a pair, with special tokens:
    what transformers 4.x's `build_inputs_with_special_tokens` and
    `create_token_type_ids_from_sequences` returned for fast tokenizers.
    """
    from tokenizers import Encoding

    backend = tokenizer.backend_tokenizer

    def placeholder(length: int, marker: int) -> Encoding:
        encoding = backend.encode("", add_special_tokens=False)
        encoding.pad(length, pad_id=marker, pad_type_id=0, pad_token="")
        return encoding

    first = placeholder(len(token_ids_0), _FIRST)
    second = None if token_ids_1 is None else placeholder(len(token_ids_1), _SECOND)
    processor = backend.post_processor
    if processor is None:
        # No post-processor: the sequences as they are, type ids 0 then 1 (transformers 4.x's
        # base implementation).
        ids = list(token_ids_0) + list(token_ids_1 or [])
        return ids, [0] * len(token_ids_0) + [1] * len(token_ids_1 or [])
    encoding = processor.process(first, second, add_special_tokens=True)
    fill = {_FIRST: iter(token_ids_0), _SECOND: iter(token_ids_1 or [])}
    ids = [next(fill[i]) if i in fill else i for i in encoding.ids]
    return ids, list(encoding.type_ids)


def _build_inputs_with_special_tokens(
    self: Any, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None
) -> List[int]:
    return post_processed(self, token_ids_0, token_ids_1)[0]


def _create_token_type_ids_from_sequences(
    self: Any, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None
) -> List[int]:
    return post_processed(self, token_ids_0, token_ids_1)[1]


def _encode_plus(self: Any, text: Any, text_pair: Any = None, **kwargs: Any) -> Any:
    """transformers 4.x's `encode_plus`: one text (or pair) encoded as `__call__` encodes it."""
    return self(text, text_pair=text_pair, **kwargs)


def _define_if_absent(owner: type, name: str, function: Callable[..., Any]) -> None:
    if not hasattr(owner, name):
        function.__name__ = name
        setattr(owner, name, function)


# What each AllenNLP module needs: a context its code is run in, and a repair after it ran.


@contextlib.contextmanager
def _names_lent(module: types.ModuleType, names: Dict[str, Any]) -> Iterator[None]:
    """Lends `module` the `names` it lacks while an AllenNLP module that imports them loads;
    afterwards `module` is as it was."""
    missing = {}
    for name, value in names.items():
        try:
            getattr(module, name)
        except AttributeError:
            missing[name] = value
    for name, value in missing.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name in missing:
            delattr(module, name)


def _push_to_hf_context() -> Any:
    import huggingface_hub

    return _names_lent(huggingface_hub, {"HfFolder": _RemovedFromHub, "Repository": _RemovedFromHub})


def _repair_push_to_hf(module: types.ModuleType) -> None:
    if module.Repository is _RemovedFromHub:
        module.push_to_hf = _refuse_push_to_hf


def _optimizers_context() -> Any:
    import transformers

    return _names_lent(transformers, {"AdamW": _adamw_class()})


def _drops_add_special_tokens(get_tokenizer: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(model_name: str, **kwargs: Any) -> Any:
        # transformers 4.x stored and ignored it; 4.44 and later refuse it.
        kwargs.pop("add_special_tokens", None)
        return get_tokenizer(model_name, **kwargs)

    wrapped.__doc__, wrapped.__name__ = get_tokenizer.__doc__, get_tokenizer.__name__
    wrapped.__wrapped__ = get_tokenizer  # type: ignore[attr-defined]
    wrapped._allennlp_repair = True  # type: ignore[attr-defined]
    return wrapped


def _repair_cached_transformers(module: types.ModuleType) -> None:
    if not getattr(module.get_tokenizer, "_allennlp_repair", False):
        module.get_tokenizer = _drops_add_special_tokens(module.get_tokenizer)
    from transformers import tokenization_utils_base

    _define_if_absent(tokenization_utils_base.PreTrainedTokenizerBase, "encode_plus", _encode_plus)
    try:
        from transformers.tokenization_utils_tokenizers import TokenizersBackend
    except ImportError:  # transformers 4.x: PreTrainedTokenizerFast has them
        return
    _define_if_absent(TokenizersBackend, "build_inputs_with_special_tokens", _build_inputs_with_special_tokens)
    _define_if_absent(TokenizersBackend, "create_token_type_ids_from_sequences", _create_token_type_ids_from_sequences)


def _language_modeling_collator(
    tokenizer: Any, mlm: bool = True, mlm_probability: float = 0.15
) -> Any:
    """transformers' `DataCollatorForLanguageModeling` with AllenNLP's positional arguments
    given by name (a field was inserted before `mlm_probability` in transformers 5)."""
    from transformers.data.data_collator import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=mlm, mlm_probability=mlm_probability)


def _repair_data_collator(module: types.ModuleType) -> None:
    module.DataCollatorForLanguageModeling = _language_modeling_collator


# module name: (context its code runs in, or None; repair after it ran, or None)
_REPAIRS: Dict[str, Tuple[Optional[Callable[[], Any]], Optional[Callable[[types.ModuleType], None]]]] = {
    "allennlp.common.push_to_hf": (_push_to_hf_context, _repair_push_to_hf),
    "allennlp.training.optimizers": (_optimizers_context, None),
    "allennlp.common.cached_transformers": (None, _repair_cached_transformers),
    "allennlp.data.data_loaders.data_collator": (None, _repair_data_collator),
}


class _RepairingLoader(importlib.abc.Loader):
    """Runs an AllenNLP module's own loader, inside its repair's context, then the repair."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[types.ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        context, repair = _REPAIRS[self._name]
        with context() if context is not None else contextlib.nullcontext():
            self._loader.exec_module(module)
        if repair is not None:
            repair(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the real loader
        return getattr(self._loader, name)


class _RepairingFinder(importlib.abc.MetaPathFinder):
    """Finds the AllenNLP modules `_REPAIRS` names as the other finders do, and has them loaded
    through `_RepairingLoader`."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in _REPAIRS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RepairingLoader(spec.loader, fullname)
                return spec
        return None


def install() -> None:
    """Puts the import hook in place (idempotent); repairs the modules already imported."""
    if any(isinstance(finder, _RepairingFinder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _RepairingFinder())
    for name, (_, repair) in _REPAIRS.items():
        module = sys.modules.get(name)
        if module is not None and repair is not None:
            repair(module)
