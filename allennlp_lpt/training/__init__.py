from allennlp_lpt.training.callbacks import ParameterCountsCallback, RngStateCallback, TimeBudgetCallback
from allennlp_lpt.training.learning_rate_schedulers import LinearWithWarmupFraction

__all__ = ["LinearWithWarmupFraction", "ParameterCountsCallback", "RngStateCallback", "TimeBudgetCallback"]
