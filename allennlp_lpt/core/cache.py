"""
A store of the frozen states below the prompt layer, so later epochs skip those layers.

Exact only when the lower layers are deterministic, so the embedder runs them in eval mode while
the cache is on (the authors keep dropout on there: see `LatePromptTransformerEmbedder`).
Each store has a namespace (model, prompt layer, a digest of every byte of the lower layers'
weights, the precision and mode they run in, storage dtype) and keys its entries by the
example's own token and type ids (`instance_key`): a changed text, model, weight or prompt layer
never hits a stale entry.

Where entries live, in order: one arena on the compute device (GPU memory in a CUDA run) up to
`memory_mb`; pinned host memory up to `host_memory_mb` (CUDA runs); one file each on disk when a
directory is given; past all of them, new states are simply not stored. A batch is read back
with one gather from the arena, at positions the host computes from the keys and lengths it
already knows, so a training step whose entries are all in the arena never waits for the GPU
when the keys come with the batch (`RowKeys`, computed by the data pipeline).
A file on disk holds its states with a digest of them; a file that does not load (damaged,
truncated, a pickle that weights-only loading refuses), whose digest or shape does not match,
is never used: it is removed and its states are computed again, with one warning naming it.
The directory is checked for writing when the embedder is built (`check_cache_dir`); a write
that fails later (a full disk) stops storing on disk, with one warning, and leaves no partial
file: the states not stored are computed again when needed.
"""
import contextlib
import hashlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy
import torch
from allennlp.common.checks import ConfigurationError

logger = logging.getLogger(__name__)

IdSequence = Union[Sequence[int], numpy.ndarray]


def instance_key(token_ids: IdSequence, type_ids: Optional[IdSequence] = None) -> str:
    """
    The key of one example: a SHA-1 of its unpadded token ids (and type ids) as int64, the same
    whether the data pipeline computes it from the indexed lists or the embedder from a batch.
    """
    digest = hashlib.sha1(numpy.asarray(token_ids, dtype=numpy.int64).tobytes())
    if type_ids is not None:
        digest.update(b"|")
        digest.update(numpy.asarray(type_ids, dtype=numpy.int64).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class RowKeys:
    """
    Each row's `instance_key` and number of real tokens, computed on the host by the data
    pipeline (see `CacheKeyedTextField`), and each row's label where the instance has one.
    AllenNLP moves a batch's tensors to the GPU and leaves this as it is, so the embedder can
    find the rows' entries without reading anything back from the device (and a model that
    appends each row's gold answer can key the longer rows: `answer_key`).
    """

    keys: Tuple[str, ...]
    lengths: Tuple[int, ...]
    labels: Optional[Tuple[Optional[str], ...]] = None


def answer_key(key: str, answer_ids: Sequence[int]) -> str:
    """The key of an instance's tokens followed by `answer_ids` (its own entry: the states of
    the answer's positions depend on the answer)."""
    return hashlib.sha1(f"{key}|answer={list(answer_ids)}".encode()).hexdigest()


def check_cache_dir(directory: str, *, key: str = "cache_dir") -> None:
    """
    Creates `directory` where it does not exist and writes (and removes) a file in it; raises a
    ConfigurationError naming `key` where that fails, so that a directory the run cannot write
    to stops it when the model is built, not at the first entry stored.
    """
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-check-"):
            pass
    except OSError as error:
        raise ConfigurationError(
            f"{key}={directory!r}: the lower-layer cache cannot write there ({type(error).__name__}: "
            f"{error.strerror or error}). Give a directory you can write to, or leave {key} out "
            f"to keep cached states in memory only."
        ) from None


def _write_file(path: str, data: bytes) -> None:
    """Writes `data` to a new file `path`: the disk tier's one write (an OSError on a full
    disk)."""
    with open(path, "wb") as handle:
        handle.write(data)


def _digest(states: torch.Tensor) -> str:
    """SHA-1 of a tensor's dtype, shape and bytes."""
    digest = hashlib.sha1(f"{states.dtype}|{tuple(states.shape)}".encode())
    digest.update(states.contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# How much of a module's weights on a device other than the CPU one copy to the host takes.
FINGERPRINT_CHUNK_BYTES = 256 * 2**20


def weights_fingerprint(module: torch.nn.Module, *, chunk_bytes: int = FINGERPRINT_CHUNK_BYTES) -> str:
    """
    A SHA-1 of the name, shape, dtype and every byte of each parameter and buffer of `module`
    (tied weights once): modules whose weights differ in any bit get different fingerprints.

    Taken once per cache store, when the store is built. On the CPU every tensor is hashed where
    it lies (no copy): 32 ms for all-MiniLM-L6-v2's embeddings and 3 layers (66 MiB in float32),
    38 ms for 5 layers (79 MiB), median on the 2-core development machine, about 2 GB/s. On another
    device the tensors are read back in copies of up to `chunk_bytes` (one wait for the device
    per 256 MiB, not one per tensor) and hashed on the host.

    # Parameters

    module : `torch.nn.Module`
    chunk_bytes : `int`, optional (default = `FINGERPRINT_CHUNK_BYTES`)

    # Returns

    `str`, 40 hexadecimal digits.
    """
    tensors = list(module.named_parameters()) + list(module.named_buffers())
    digest = hashlib.sha1(
        "\n".join(f"{name}|{tuple(t.shape)}|{t.dtype}" for name, t in tensors).encode()
    )
    pending: List[torch.Tensor] = []  # device tensors' bytes not yet read back
    pending_bytes = 0

    def read_back() -> None:
        nonlocal pending, pending_bytes
        if pending:
            digest.update(torch.cat(pending).cpu().numpy())
        pending, pending_bytes = [], 0

    for _, tensor in tensors:
        flat = tensor.detach().contiguous().reshape(-1).view(torch.uint8)
        if flat.device.type == "cpu":
            read_back()  # keeps the bytes in order
            digest.update(flat.numpy())
            continue
        if pending and pending_bytes + flat.numel() > chunk_bytes:
            read_back()
        pending.append(flat)
        pending_bytes += flat.numel()
    read_back()
    return digest.hexdigest()


def _to_device(indices: numpy.ndarray, device: torch.device) -> torch.Tensor:
    """Host-computed indices onto `device` without making the host wait (pinned, async)."""
    tensor = torch.from_numpy(indices)
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def _spans(starts: Sequence[int], lengths: Sequence[int]) -> numpy.ndarray:
    """The concatenated ranges `start .. start + length - 1`, as int64."""
    if not starts:
        return numpy.zeros(0, dtype=numpy.int64)
    return numpy.concatenate(
        [numpy.arange(start, start + length, dtype=numpy.int64) for start, length in zip(starts, lengths)]
    )


# What a file on disk may name as the dtype its states were computed in.
_DTYPES = {str(dtype): dtype for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64)}

# Where a row's states come from while a batch is assembled.
_ARENA, _HOST, _COMPUTED = "arena", "host", "computed"


class LowerStateCache:
    """
    # Parameters

    namespace : `str`
        Everything that decides the states besides the input (model, prompt layer, weights).
    memory_mb : `float`
        The budget (MiB of stored states) on the compute device: GPU memory in a CUDA run.
    host_memory_mb : `float`, optional (default = `0`)
        In a CUDA run, the budget in pinned host memory past `memory_mb`.
    directory : `str`, optional
        Where entries go once the memory budgets are spent (a sub-folder per namespace).
    dtype : `torch.dtype`, optional
        Store states in this 16-bit dtype (half the memory of float32 states; no longer
        bit-exact unless they were computed in it): `torch.bfloat16` keeps float32's range,
        `torch.float16` rounds less but turns magnitudes past 65504 into infinities. Default:
        the dtype they were computed in.
    """

    def __init__(
        self,
        namespace: str,
        *,
        memory_mb: float = 2048.0,
        host_memory_mb: float = 0.0,
        directory: Optional[str] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        if dtype not in (None, torch.float16, torch.bfloat16):
            raise ValueError(f"LowerStateCache stores states in float16 or bfloat16, not {dtype}")
        # None: the states' own dtype (what the lower layers computed them in).
        self.dtype: Optional[torch.dtype] = dtype
        self.namespace = hashlib.sha1(f"{namespace}|{self.dtype}".encode()).hexdigest()
        self.memory_budget = int(memory_mb * 2**20)
        self.memory_used = 0
        self.host_budget = int(host_memory_mb * 2**20)
        self.host_used = 0
        self.directory = None if directory is None else os.path.join(directory, self.namespace)
        # Set once a write to `directory` fails: nothing more is stored there in this run.
        self._disk_failed = False
        if self.directory is not None:
            try:
                os.makedirs(self.directory, exist_ok=True)
            except OSError as error:
                self._stop_storing_on_disk(self.directory, error)
        # The device tier: one `(capacity, hidden)` tensor whose row 0 stays zero (what padding
        # positions gather), each entry at its first row; grown by doubling, never past the
        # budget.
        self._arena: Optional[torch.Tensor] = None
        self._arena_rows = 1
        self._slots: Dict[str, int] = {}
        self._host: Dict[str, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0
        # The dtype the lower layers compute the states in, which every batch comes back in:
        # known from the first computed batch, or from an entry on disk.
        self.computed_dtype: Optional[torch.dtype] = None
        self._warned_full = False

    def __len__(self) -> int:
        """Entries held in memory (device and host)."""
        return len(self._slots) + len(self._host)

    # Reading and writing a batch.

    def batch_states(
        self,
        keys: Sequence[str],
        lengths: Sequence[int],
        seq_len: int,
        *,
        compute: Callable[[torch.Tensor], torch.Tensor],
        device: torch.device,
        hidden_size: int,
    ) -> torch.Tensor:
        """
        The padded states of a batch: stored rows read back, missing rows computed (and stored).

        Every row comes back in the dtype the lower layers computed it in, as the uncached path
        returns it; with 16-bit storage (`dtype`) every row of the batch is rounded to it alike
        (stored rows, rows held elsewhere, and rows computed now past every budget).

        # Parameters

        keys : each row's `instance_key`.
        lengths : each row's number of real tokens (right-padded rows).
        seq_len : `int`
            The batch's padded length.
        compute : `Callable`
            Given a `(num_missing,)` LongTensor of row indices on `device`, returns those rows'
            states, shape `(num_missing, seq_len, hidden_size)`.
        device : where the output goes (the compute device).
        hidden_size : `int`

        # Returns

        `torch.Tensor`, shape `(len(keys), seq_len, hidden_size)`, zeros at padding positions.
        """
        if self._arena is not None and self._arena.device != device:
            self._arena = self._arena.to(device)  # the model moved (e.g. CPU to GPU): once
        sources, missing = self._locate(keys, lengths, hidden_size)
        computed: Optional[torch.Tensor] = None
        if missing:
            computed = compute(_to_device(numpy.asarray(missing, dtype=numpy.int64), device)).detach()
            self.computed_dtype = computed.dtype
            if self.dtype is not None:
                computed = computed.to(self.dtype)  # rounded before any row is read from it
            stored = self._store([keys[row] for row in missing], [lengths[row] for row in missing], computed)
            for position, (row, source) in enumerate(zip(missing, stored)):
                sources[row] = source if source is not None else (_COMPUTED, position)
        dtype = self.computed_dtype or torch.float32
        return self._assemble(sources, lengths, seq_len, computed, device, hidden_size, dtype)

    def _locate(
        self, keys: Sequence[str], lengths: Sequence[int], hidden_size: int
    ) -> Tuple[List[Optional[Tuple[str, object]]], List[int]]:
        """Where each row's states are (None where nothing is stored), and the missing rows."""
        sources: List[Optional[Tuple[str, object]]] = []
        missing: List[int] = []
        for key, length in zip(keys, lengths):
            source = self._find(key, length, hidden_size)
            if source is None:
                missing.append(len(sources))
                self.misses += 1
            else:
                self.hits += 1
            sources.append(source)
        return sources, missing

    def _assemble(
        self,
        sources: Sequence[Optional[Tuple[str, object]]],
        lengths: Sequence[int],
        seq_len: int,
        computed: Optional[torch.Tensor],
        device: torch.device,
        hidden_size: int,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        """
        The batch `(rows, seq_len, hidden)` in `dtype`: every position gathers from the arena
        (row 0, zeros, unless its row's states are there), then the rows held in host memory
        or on disk and the rows computed now are copied in, one scatter each.
        """
        batch = len(sources)
        arena_index = numpy.zeros(batch * seq_len, dtype=numpy.int64)
        elsewhere: Dict[str, Tuple[List[int], List[object]]] = {_HOST: ([], []), _COMPUTED: ([], [])}
        for row, (source, length) in enumerate(zip(sources, lengths)):
            assert source is not None
            kind, where = source
            if kind == _ARENA:
                arena_index[row * seq_len : row * seq_len + length] = numpy.arange(where, where + length)  # type: ignore[operator]
            else:
                elsewhere[kind][0].append(row)
                elsewhere[kind][1].append(where)
        if self._arena is not None:
            output = self._arena.index_select(0, _to_device(arena_index, device)).to(dtype)
        else:
            output = torch.zeros(batch * seq_len, hidden_size, dtype=dtype, device=device)

        def targets(rows: List[int]) -> torch.Tensor:
            return _to_device(_spans([r * seq_len for r in rows], [lengths[r] for r in rows]), device)

        host_rows, host_parts = elsewhere[_HOST]
        if host_rows:
            # One asynchronous copy per row from pinned memory (or a file's tensor), one scatter.
            flat = torch.cat([part.to(device, non_blocking=True) for part in host_parts])  # type: ignore[attr-defined]
            output.index_copy_(0, targets(host_rows), flat.to(dtype))
        computed_rows, positions = elsewhere[_COMPUTED]
        if computed_rows:
            assert computed is not None
            within = _spans([p * seq_len for p in positions], [lengths[r] for r in computed_rows])  # type: ignore[operator]
            flat = computed.reshape(-1, hidden_size).index_select(0, _to_device(within, device))
            output.index_copy_(0, targets(computed_rows), flat.to(dtype))
        return output.view(batch, seq_len, hidden_size)

    def _find(self, key: str, length: int, hidden_size: int) -> Optional[Tuple[str, object]]:
        first_row = self._slots.get(key)
        if first_row is not None:
            return (_ARENA, first_row)
        states = self._host.get(key)
        if states is None and self.directory is not None:
            path = self._path(key)
            if os.path.exists(path):
                states = self._load_verified(path, (length, hidden_size))
        return None if states is None else (_HOST, states)

    def _store(
        self, keys: Sequence[str], lengths: Sequence[int], computed: torch.Tensor
    ) -> List[Optional[Tuple[str, object]]]:
        """
        Stores freshly computed rows `(rows, seq_len, hidden)`: into the arena while the device
        budget allows (one gather and one copy for all of them), then pinned host memory, then
        disk (which waits for the device: the states must reach the host to be written).
        Returns, per row, where it is now readable from, or None (read it from `computed`).
        `computed` is already in the storage dtype.
        """
        seq_len, hidden_size = computed.size(1), computed.size(2)
        row_bytes = hidden_size * computed.element_size()
        result: List[Optional[Tuple[str, object]]] = []
        to_arena: List[int] = []
        added = 0  # arena rows taken by this batch so far
        for position, (key, length) in enumerate(zip(keys, lengths)):
            # The same instance twice in one batch: stored once.
            if key in self._slots:
                result.append((_ARENA, self._slots[key]))
                continue
            if key in self._host:
                result.append((_HOST, self._host[key]))
                continue
            size = length * row_bytes
            if self.memory_used + size <= self.memory_budget:
                self._slots[key] = self._arena_rows + added
                added += length
                self.memory_used += size
                to_arena.append(position)
                result.append((_ARENA, self._slots[key]))
                continue
            states = computed[position, :length]
            if states.device.type == "cuda" and self.host_used + size <= self.host_budget:
                # Asynchronous: stream order makes it complete before any later copy back.
                pinned = torch.empty(states.shape, dtype=states.dtype, pin_memory=True)
                self._host[key] = pinned.copy_(states, non_blocking=True)
                self.host_used += size
                result.append((_HOST, self._host[key]))
            elif self.directory is not None and not self._disk_failed:
                self._save(key, states)
                result.append(None)
            else:
                if self.directory is None and not self._warned_full:
                    logger.warning(
                        "The lower-layer cache is full (%.0f MiB in memory, no directory): later "
                        "instances are computed every epoch. Raise cache_memory_mb or set cache_dir.",
                        self.memory_budget / 2**20,
                    )
                    self._warned_full = True
                result.append(None)
        if to_arena:
            self._reserve(self._arena_rows + added, computed, row_bytes)
            source_rows = _spans([p * seq_len for p in to_arena], [lengths[p] for p in to_arena])
            assert self._arena is not None
            self._arena[self._arena_rows : self._arena_rows + added] = computed.reshape(
                -1, hidden_size
            ).index_select(0, _to_device(source_rows, computed.device))
            self._arena_rows += added
        return result

    def _reserve(self, rows: int, like: torch.Tensor, row_bytes: int) -> None:
        """Makes the arena hold at least `rows` rows (doubling, capped at the budget)."""
        capacity = 0 if self._arena is None else self._arena.size(0)
        if rows <= capacity:
            return
        limit = 1 + self.memory_budget // row_bytes
        new_capacity = min(max(rows, 2 * capacity, 1024), limit)
        arena = torch.zeros(new_capacity, like.size(-1), dtype=like.dtype, device=like.device)
        if self._arena is not None:
            arena[: self._arena_rows] = self._arena[: self._arena_rows]
        self._arena = arena

    # Disk.

    def _path(self, key: str) -> str:
        assert self.directory is not None
        return os.path.join(self.directory, key[:2], key + ".pt")

    def _save(self, key: str, states: torch.Tensor) -> None:
        path = self._path(key)
        temporary = f"{path}.{os.getpid()}.tmp"
        states = states.to("cpu").clone()
        entry = {"states": states, "sha1": _digest(states), "computed_dtype": str(self.computed_dtype)}
        # Serialized in memory, so that a failing write is an OSError of ours, not one inside
        # PyTorch's zip writer.
        buffer = io.BytesIO()
        torch.save(entry, buffer)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            _write_file(temporary, buffer.getvalue())
            os.replace(temporary, path)  # atomic: a killed run never leaves half an entry
        except OSError as error:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            self._stop_storing_on_disk(path, error)

    def _stop_storing_on_disk(self, path: str, error: OSError) -> None:
        self._disk_failed = True
        logger.warning(
            "The lower-layer cache could not write %s (%s): it stores nothing more on disk in "
            "this run, and the states it cannot hold are computed again when needed (slower, "
            "same results). Free space in cache_dir (or give another) for later runs.",
            path, error.strerror or error,
        )

    def _load_verified(
        self, path: str, shape: Tuple[Optional[int], Optional[int]]
    ) -> Optional[torch.Tensor]:
        problem = None
        try:
            entry = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as error:  # noqa: BLE001  (any damage: the entry is recomputed)
            problem = f"it does not load ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
        else:
            states = entry.get("states") if isinstance(entry, dict) else None
            if not isinstance(states, torch.Tensor) or entry.get("sha1") != _digest(states):
                problem = "its digest does not match its states (or it has none)"
            elif states.dim() != 2 or any(
                want is not None and got != want for got, want in zip(states.shape, shape)
            ):
                problem = f"its states have shape {tuple(states.shape)}, not {shape}"
            elif _DTYPES.get(entry.get("computed_dtype")) is None:
                problem = f"it names no dtype its states were computed in ({entry.get('computed_dtype')!r})"
            else:
                self.computed_dtype = self.computed_dtype or _DTYPES[entry["computed_dtype"]]
                return states
        logger.warning(
            "Lower-layer cache entry %s is not used: %s. Its states are computed again.", path, problem
        )
        try:
            os.remove(path)
        except OSError:
            pass
        return None
