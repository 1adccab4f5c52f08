"""A test-only trainer callback that kills its own process mid-epoch, once (imported by the
training subprocess of the recovery test through --include-package)."""
import os
import signal

from allennlp.training.callbacks.callback import TrainerCallback


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
