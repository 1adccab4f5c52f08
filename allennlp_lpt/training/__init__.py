from allennlp_lpt.training.callbacks import ParameterCountsCallback, RngStateCallback, TimeBudgetCallback
from allennlp_lpt.training.confusion_matrix import ConfusionMatrixCallback, ConfusionMatrixEvaluator
from allennlp_lpt.training.learning_rate_schedulers import LinearWithWarmupFraction

__all__ = [
    "ConfusionMatrixCallback",
    "ConfusionMatrixEvaluator",
    "LinearWithWarmupFraction",
    "ParameterCountsCallback",
    "RngStateCallback",
    "TimeBudgetCallback",
]
