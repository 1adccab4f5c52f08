"""
Checks of a batch's contents that do not make the host wait for the GPU.

Reading a verdict computed on a GPU back to the host (`bool(tensor)`) waits for every kernel
queued before it: at each step, that idles the GPU while the host catches up. A `BatchCheck`
instead copies the verdict back asynchronously and reads it at a later call, when the GPU has
long finished it, so a bad batch raises one or a few steps late, naming which batch it was.
"""
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, Optional

import torch


@dataclass
class _Pending:
    batch: int
    verdict: torch.Tensor  # () bool, on the host (pinned, filled asynchronously) or the CPU
    event: Optional["torch.cuda.Event"]
    bad_rows: torch.Tensor
    message: Callable[[int], str]


class BatchCheck:
    """
    One component's check of the rows of each batch it receives.

    # Parameters

    defer : `bool`, optional
        Read the verdict at a later call instead of at once. Default: on CUDA tensors only
        (on the CPU reading it costs nothing).
    """

    def __init__(self, *, defer: Optional[bool] = None) -> None:
        self.defer = defer
        self._pending: Deque[_Pending] = deque()
        self._batches = 0

    def __call__(self, bad_rows: torch.Tensor, message: Callable[[int], str]) -> None:
        """
        # Parameters

        bad_rows : `torch.BoolTensor`, shape `(batch_size,)`
            True for each row that breaks the rule.
        message : `Callable[[int], str]`
            The error message for the first bad row (called only when there is one).
        """
        self._batches += 1
        self._raise_finished(wait=False)
        defer = self.defer if self.defer is not None else bad_rows.device.type == "cuda"
        if not defer:
            self._raise_if_bad(bad_rows, message, batch=None)
            return
        verdict = bad_rows.any()
        event = None
        if verdict.device.type == "cuda":
            host = torch.empty((), dtype=torch.bool, pin_memory=True)
            verdict = host.copy_(verdict, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        self._pending.append(_Pending(self._batches, verdict, event, bad_rows, message))

    def flush(self) -> None:
        """Waits for every verdict not read yet and raises for the first bad batch."""
        self._raise_finished(wait=True)

    def _raise_finished(self, *, wait: bool) -> None:
        while self._pending:
            pending = self._pending[0]
            if pending.event is not None and not pending.event.query():
                if not wait:
                    return
                pending.event.synchronize()
            self._pending.popleft()
            if bool(pending.verdict):
                self._pending.clear()
                self._raise_if_bad(pending.bad_rows, pending.message, batch=pending.batch)

    @staticmethod
    def _raise_if_bad(
        bad_rows: torch.Tensor, message: Callable[[int], str], *, batch: Optional[int]
    ) -> None:
        if not bool(bad_rows.any()):
            return
        text = message(int(bad_rows.nonzero()[0, 0]))
        if batch is not None:
            text += (
                f" (Batch {batch} this component received. On a GPU this check is read back "
                f"after later batches have started, so that the host never waits for it.)"
            )
        raise ValueError(text)
