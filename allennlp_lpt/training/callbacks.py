import json
import logging
import os
import random
import sys
import time
from typing import Any, Dict, Optional, Tuple

import numpy
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import dump_metrics
from allennlp.training.callbacks.callback import TrainerCallback

logger = logging.getLogger(__name__)


@TrainerCallback.register("lpt_rng_state")
class RngStateCallback(TrainerCallback):
    """
    Makes a run killed and restarted with `--recover` end exactly where an uninterrupted run
    ends: the same batches in the same order, the same dropout draws.

    On recovery AllenNLP replays the data loading of the epochs already done, so that the random
    states the data pipeline uses (Python's and NumPy's: the bucket sampler's shuffle and
    padding noise) advance as they did. Two things break that, and this callback mends both:

    - **Validation draws too.** AllenNLP's bucket sampler draws from Python's generator for every
      validation instance, even unshuffled, while the replay skips validation. So the states
      that Python's and NumPy's generators had after the last training batch of an epoch are put
      back once the epoch's validation is done: validation then leaves no trace, in the
      uninterrupted run as in the replay.
    - **The forward passes are not replayed**, and dropout draws from PyTorch's generator: its
      state is saved in every checkpoint and restored with it, as tensors, which
      `torch.load(weights_only=True)` accepts.
    - **The best model is forgotten.** AllenNLP 2.10 saves an epoch's checkpoint before it notes
      that the epoch was the best so far, so a run recovered from that checkpoint ends by testing
      (`evaluate_on_test`) its last weights instead of the best. On a recovered start the best
      weights saved by the earlier session (`best.th`) are named the best model again.

    Registered as a `TrainerCallback` with name "lpt_rng_state".
    """

    def __init__(self, serialization_dir: str) -> None:
        super().__init__(serialization_dir)
        self._after_training: Optional[Tuple[Any, Any]] = None

    def on_start(self, trainer: Any, is_primary: bool = True, **kwargs: Any) -> None:
        recovered = getattr(trainer, "_start_after_epochs_completed", 0) > 0
        best = os.path.join(self.serialization_dir, "best.th")
        tracker = getattr(trainer, "_metric_tracker", None)
        if recovered and getattr(trainer, "_best_model_filename", "") is None and os.path.isfile(best) \
                and tracker is not None and tracker.best_epoch is not None:
            trainer._best_model_filename = best

    def on_batch(
        self,
        trainer: Any,
        batch_inputs: Any,
        batch_outputs: Any,
        batch_metrics: Dict[str, Any],
        epoch: int,
        batch_number: int,
        is_training: bool,
        is_primary: bool = True,
        batch_grad_norm: Optional[float] = None,
        **kwargs: Any,
    ) -> None:
        if is_training:
            self._after_training = (random.getstate(), numpy.random.get_state())

    def on_epoch(
        self,
        trainer: Any,
        metrics: Dict[str, Any],
        epoch: int,
        is_primary: bool = True,
        **kwargs: Any,
    ) -> None:
        # Called after the epoch's validation: undo the draws validation made.
        if self._after_training is not None:
            python_state, numpy_state = self._after_training
            random.setstate(python_state)
            numpy.random.set_state(numpy_state)
            self._after_training = None

    def state_dict(self) -> Dict[str, Any]:
        state: Dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if not state_dict:
            return
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def parameter_counts(model: torch.nn.Module) -> Tuple[int, int]:
    """(trainable, total) parameters of `model`, each tensor counted once (a shared or tied
    weight reached through several modules is one tensor)."""
    seen: Dict[int, torch.nn.Parameter] = {}
    for parameter in model.parameters():
        seen.setdefault(id(parameter), parameter)
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return trainable, total


@TrainerCallback.register("lpt_parameter_counts")
class ParameterCountsCallback(TrainerCallback):
    """
    At the start of training, logs the model's trainable and total parameters, as PEFT's
    `print_trainable_parameters` does (`trainable params: 263,296 || all params: 355,622,912 ||
    trainable%: 0.0740`); when training ends, writes them to `parameter_counts.json` in the
    serialization directory (a run that fails leaves no such file). The shipped configs add it.

    Registered as a `TrainerCallback` with name "lpt_parameter_counts".
    """

    def on_start(self, trainer: Any, is_primary: bool = True, **kwargs: Any) -> None:
        if not is_primary:
            return
        trainable, total = parameter_counts(trainer.model)
        share = 100.0 * trainable / total if total else 0.0
        logger.info("trainable params: %s || all params: %s || trainable%%: %.4f", f"{trainable:,}", f"{total:,}", share)
        self._counts = {"trainable": trainable, "total": total}

    def on_end(self, trainer: Any, metrics: Optional[Dict[str, Any]] = None, epoch: Optional[int] = None,
               is_primary: bool = True, **kwargs: Any) -> None:
        counts = getattr(self, "_counts", None)
        if is_primary and counts is not None and metrics is not None:  # None: training failed
            with open(os.path.join(self.serialization_dir, "parameter_counts.json"), "w") as handle:
                json.dump(counts, handle)


def end_after_this_epoch(trainer: Any) -> None:
    """Ends training after the epoch whose `on_epoch` callbacks are running: the trainer's own
    early-stopping check, right after them, then stops (patience 0), and AllenNLP restores the
    best checkpoint and tests it as after any run."""
    trainer._metric_tracker._patience = 0


@TrainerCallback.register("lpt_time_budget")
class TimeBudgetCallback(TrainerCallback):
    """
    Stops training once `seconds` of wall-clock time have passed since training began (model
    building and data reading do not count; the validation after each epoch does), so that
    methods can be compared at equal time as well as at equal epochs. The batch that crosses the
    budget is the last one trained; the rest of that epoch is passed over, its validation runs
    as usual, and training ends there: AllenNLP then restores the best checkpoint and evaluates
    it (`evaluate_on_test`) as after any run. Give `num_epochs` enough epochs to fill the
    budget. `metrics.json` gets `stopped_by_time_budget`. The stopped epoch's training metrics
    cover the batches it trained; its validation metrics, the validation set alone. In
    distributed training every worker stops after the same batch (the first past the budget
    decides).

    Registered as a `TrainerCallback` with name "lpt_time_budget".

    # Parameters

    seconds : `float`
        The budget; more than 0.
    """

    def __init__(self, serialization_dir: str, seconds: float) -> None:
        super().__init__(serialization_dir)
        if not seconds > 0:
            raise ConfigurationError(f"lpt_time_budget.seconds={seconds!r}: give a number of seconds above 0.")
        self.seconds = float(seconds)
        self._started: Optional[float] = None
        self.stopped = False
        # The stopped epoch's training metrics, taken when its last batch trained.
        self._stopped_epoch_training: Optional[Dict[str, Any]] = None

    def on_start(self, trainer: Any, is_primary: bool = True, **kwargs: Any) -> None:
        self._started = time.monotonic()

    def on_batch(self, trainer: Any, batch_inputs: Any, batch_outputs: Any, batch_metrics: Dict[str, Any],
                 epoch: int, batch_number: int, is_training: bool, is_primary: bool = True,
                 batch_grad_norm: Optional[float] = None, **kwargs: Any) -> None:
        if not is_training or self.stopped or self._started is None:
            return
        if self._out_of_time(trainer):
            self.stopped = True
            # AllenNLP 2.10 has no way to end an epoch early; it passes over (reads, without
            # training on them) the batches before a recovered run's position, and that is
            # made to cover the rest of this epoch.
            trainer._start_after_epochs_completed = trainer._epochs_completed
            trainer._start_after_batches_in_epoch_completed = sys.maxsize
            # AllenNLP then reports no training metrics for this epoch (it would keep the last
            # epoch's) and leaves the model's metric counts uncleared, so validation would add
            # its counts to this epoch's training counts. Take the training figures now (running
            # means over the batches trained) and clear the counts.
            self._stopped_epoch_training = {key: value for key, value in batch_metrics.items()
                                            if key not in ("batch_loss", "batch_reg_loss")}
            trainer.model.get_metrics(reset=True)
            logger.info("lpt_time_budget: %.0f s spent; this epoch's remaining batches are passed over "
                        "and training ends after its validation.", self.seconds)

    def _out_of_time(self, trainer: Any) -> bool:
        out = time.monotonic() - self._started >= self.seconds
        if getattr(trainer, "_distributed", False):
            # Every worker must stop after the same batch, or one trains on while another
            # validates and their collective calls no longer pair up: the first worker past the
            # budget decides for all (one scalar per batch, as AllenNLP's own end-of-data check).
            flag = torch.tensor(int(out), device=trainer.cuda_device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            out = bool(flag.item())
        return out

    def on_epoch(self, trainer: Any, metrics: Dict[str, Any], epoch: int, is_primary: bool = True,
                 **kwargs: Any) -> None:
        if self.stopped:
            metrics["stopped_by_time_budget"] = True
            if self._stopped_epoch_training is not None:
                for key, value in self._stopped_epoch_training.items():
                    metrics["training_" + key] = value
                self._stopped_epoch_training = None
                if is_primary:  # AllenNLP wrote this epoch's file before its callbacks ran.
                    dump_metrics(os.path.join(self.serialization_dir, f"metrics_epoch_{epoch}.json"), metrics)
            end_after_this_epoch(trainer)

    def on_end(self, trainer: Any, metrics: Optional[Dict[str, Any]] = None, epoch: Optional[int] = None,
               is_primary: bool = True, **kwargs: Any) -> None:
        if metrics is not None:
            metrics["stopped_by_time_budget"] = self.stopped
