"""A test-only trainer callback that kills its own process mid-epoch, once (imported by the
training subprocess of the recovery test through --include-package)."""
import os
import signal

from allennlp.training.callbacks.callback import TrainerCallback

from allennlp_lpt.training.callbacks import TimeBudgetCallback


@TrainerCallback.register("test_kill_once")
class KillOnce(TrainerCallback):
    def __init__(self, serialization_dir: str, marker: str, epoch: int, batch: int) -> None:
        super().__init__(serialization_dir)
        self.marker, self.epoch, self.batch = marker, epoch, batch

    def on_batch(self, trainer, batch_inputs, batch_outputs, batch_metrics, epoch, batch_number,
                 is_training, is_primary=True, batch_grad_norm=None, **kwargs) -> None:
        if is_training and epoch == self.epoch and batch_number == self.batch and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


@TrainerCallback.register("test_save_generator_per_worker")
class SaveGeneratorPerWorker(TrainerCallback):
    """Saves each worker's generator weights at the start and the end of training as
    `generator_{start,end}_rank{R}.th` in `folder` (the distributed test compares them)."""

    def __init__(self, serialization_dir: str, folder: str) -> None:
        super().__init__(serialization_dir)
        self.folder = folder

    def _save(self, trainer, when: str) -> None:
        import torch
        import torch.distributed as dist

        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        model = trainer._pytorch_model  # the model inside DistributedDataParallel
        state = {name: value.detach().clone() for name, value in model.state_dict().items()
                 if "generator" in name}
        torch.save(state, os.path.join(self.folder, f"generator_{when}_rank{rank}.th"))

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        self._save(trainer, "start")

    def on_end(self, trainer, metrics=None, epoch=None, is_primary: bool = True, **kwargs) -> None:
        self._save(trainer, "end")


@TrainerCallback.register("test_time_budget_by_rank")
class TimeBudgetByRank(TimeBudgetCallback):
    """`lpt_time_budget` with a different budget on each worker (`seconds[rank]`): workers whose
    clocks disagree about the budget."""

    def __init__(self, serialization_dir: str, seconds: list) -> None:
        import torch.distributed as dist

        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        super().__init__(serialization_dir, seconds[rank])
