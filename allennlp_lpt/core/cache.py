"""
A store of the frozen states below the prompt layer, so later epochs skip those layers.

Exact only when the lower layers are deterministic, so the embedder runs them in eval mode while
the cache is on (the authors keep dropout on there: see `LatePromptTransformerEmbedder`).
Entries are keyed by a digest of the namespace (model, prompt layer, a fingerprint of the
lower layers' weights, storage dtype) and the example's own token and type ids: a changed text,
model or prompt layer can never hit a stale entry. Entries live in memory up to a budget, then
on disk (one file each) when a directory is given; past both, new states are simply not stored.
A file on disk holds its states with a digest of them; a file that does not load (damaged,
truncated, a pickle that weights-only loading refuses), whose digest or shape does not match,
is never used: it is removed and its states are computed again, with one warning naming it.
"""
import hashlib
import logging
import os
from collections import OrderedDict
from typing import Iterable, List, Optional, Sequence, Tuple

import torch

logger = logging.getLogger(__name__)


def _digest(states: torch.Tensor) -> str:
    """SHA-1 of a tensor's dtype, shape and bytes."""
    digest = hashlib.sha1(f"{states.dtype}|{tuple(states.shape)}".encode())
    digest.update(states.contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A digest of the names, shapes and a few sampled values of every parameter."""
    digest = hashlib.sha1()
    for name, parameter in module.named_parameters():
        flat = parameter.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 64)][:64].float().cpu()
        digest.update(name.encode())
        digest.update(str(tuple(parameter.shape)).encode())
        digest.update(sample.numpy().tobytes())
        digest.update(str(float(flat.float().sum())).encode())
    return digest.hexdigest()


class LowerStateCache:
    """
    # Parameters

    namespace : `str`
        Everything that decides the states besides the input (model, prompt layer, weights).
    memory_mb : `float`
        The budget (MiB of stored states) on the states' own device: GPU memory in a CUDA run.
    host_memory_mb : `float`, optional (default = `0`)
        In a CUDA run, the budget in pinned host memory past `memory_mb`.
    directory : `str`, optional
        Where entries go once the memory budget is spent (a sub-folder per namespace).
    float16 : `bool`
        Store states in float16 (half the memory; no longer bit-exact); otherwise in the dtype
        they were computed in.
    """

    def __init__(
        self,
        namespace: str,
        *,
        memory_mb: float = 2048.0,
        host_memory_mb: float = 0.0,
        directory: Optional[str] = None,
        float16: bool = False,
    ) -> None:
        # None: the states' own dtype (what the lower layers computed them in).
        self.dtype: Optional[torch.dtype] = torch.float16 if float16 else None
        self.namespace = hashlib.sha1(f"{namespace}|{self.dtype}".encode()).hexdigest()
        self.memory_budget = int(memory_mb * 2**20)
        self.memory_used = 0
        self.host_budget = int(host_memory_mb * 2**20)
        self.host_used = 0
        self._host: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        self.directory = None if directory is None else os.path.join(directory, self.namespace)
        if self.directory is not None:
            os.makedirs(self.directory, exist_ok=True)
        self._memory: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._warned_full = False

    def key(self, token_ids: torch.Tensor, type_ids: Optional[torch.Tensor]) -> str:
        """The key of one example from its unpadded `(length,)` token (and type) ids."""
        digest = hashlib.sha1(self.namespace.encode())
        digest.update(token_ids.to(torch.int64).cpu().numpy().tobytes())
        if type_ids is not None:
            digest.update(b"|")
            digest.update(type_ids.to(torch.int64).cpu().numpy().tobytes())
        return digest.hexdigest()

    def _path(self, key: str) -> str:
        assert self.directory is not None
        return os.path.join(self.directory, key[:2], key + ".pt")

    def get(
        self, key: str, *, length: Optional[int] = None, hidden_size: Optional[int] = None
    ) -> Optional[torch.Tensor]:
        """
        The stored `(length, hidden_size)` states, or None (then the caller computes them).

        # Parameters

        key : `str`
        length, hidden_size : `int`, optional
            The shape the states must have; a disk entry of another shape is not used.
        """
        states = self._memory.get(key)
        if states is None:
            states = self._host.get(key)
        if states is None and self.directory is not None:
            path = self._path(key)
            if os.path.exists(path):
                states = self._load_verified(path, (length, hidden_size))
        if states is None:
            self.misses += 1
        else:
            self.hits += 1
        return states

    def _load_verified(self, path: str, shape: Tuple[Optional[int], Optional[int]]) -> Optional[torch.Tensor]:
        problem = None
        try:
            entry = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as error:  # noqa: BLE001  (any damage: the entry is recomputed)
            problem = f"it does not load ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
        else:
            states = entry.get("states") if isinstance(entry, dict) else None
            if not isinstance(states, torch.Tensor) or entry.get("sha1") != _digest(states):
                problem = "its digest does not match its states (or it has none)"
            elif states.dim() != 2 or any(want is not None and got != want for got, want in zip(states.shape, shape)):
                problem = f"its states have shape {tuple(states.shape)}, not {shape}"
            else:
                return states
        logger.warning(
            "Lower-layer cache entry %s is not used: %s. Its states are computed again.", path, problem
        )
        try:
            os.remove(path)
        except OSError:
            pass
        return None

    def put(self, key: str, states: torch.Tensor) -> None:
        """
        Stores one example's `(length, hidden)` states: on their own device (the GPU in a CUDA
        run) within `memory_mb`; past it, for states on a GPU, in pinned host memory within
        `host_memory_mb` (read back with asynchronous copies); past that, on disk when a
        directory is given.
        """
        states = states.detach()
        if self.dtype is not None:
            states = states.to(self.dtype)
        states = states.contiguous()
        size = states.numel() * states.element_size()
        if self.memory_used + size <= self.memory_budget:
            self._memory[key] = states.clone()  # not a view into the batch's tensor
            self.memory_used += size
        elif states.device.type == "cuda" and self.host_used + size <= self.host_budget:
            self._host[key] = states.to("cpu").pin_memory()
            self.host_used += size
        elif self.directory is not None:
            path = self._path(key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            temporary = f"{path}.{os.getpid()}.tmp"
            states = states.to("cpu").clone()
            torch.save({"states": states, "sha1": _digest(states)}, temporary)
            os.replace(temporary, path)  # atomic: a killed run never leaves half an entry
        elif not self._warned_full:
            logger.warning(
                "The lower-layer cache is full (%.0f MiB in memory, no directory): later "
                "instances are computed every epoch. Raise cache_memory_mb or set cache_dir.",
                self.memory_budget / 2**20,
            )
            self._warned_full = True

    def __len__(self) -> int:
        return len(self._memory)
