import torch
from allennlp.common.checks import ConfigurationError
from allennlp.training.learning_rate_schedulers import LearningRateScheduler, PolynomialDecay


@LearningRateScheduler.register("linear_with_warmup_fraction")
class LinearWithWarmupFraction(PolynomialDecay):
    """
    Linear warm-up over a fraction of all optimisation steps, then linear decay to 0: the
    authors' schedule (6% warm-up) without having to know the dataset size in the config.
    The trainer supplies `num_epochs` and `num_steps_per_epoch` (after gradient accumulation).

    Registered as a `LearningRateScheduler` with name "linear_with_warmup_fraction".

    # Parameters

    warmup_fraction : `float`, optional (default = `0.06`)
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        num_epochs: int,
        num_steps_per_epoch: int,
        warmup_fraction: float = 0.06,
        last_epoch: int = -1,
    ) -> None:
        if not 0.0 <= warmup_fraction < 1.0:
            raise ConfigurationError(
                f"learning_rate_scheduler.warmup_fraction={warmup_fraction} must be in [0, 1)."
            )
        total = num_epochs * num_steps_per_epoch
        super().__init__(
            optimizer,
            num_epochs,
            num_steps_per_epoch,
            power=1.0,
            warmup_steps=int(round(warmup_fraction * total)),
            end_learning_rate=0.0,
            last_epoch=last_epoch,
        )
