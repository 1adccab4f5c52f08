from allennlp_lpt.training.callbacks import ParameterCountsCallback, RngStateCallback, TimeBudgetCallback
from allennlp_lpt.training.confusion_matrix import ConfusionMatrixCallback, ConfusionMatrixEvaluator
from allennlp_lpt.training.learning_rate_schedulers import LinearWithWarmupFraction
from allennlp_lpt.training.optuna_pruning import OptunaPruningCallback

__all__ = [
    "ConfusionMatrixCallback",
    "ConfusionMatrixEvaluator",
    "LinearWithWarmupFraction",
    "OptunaPruningCallback",
    "ParameterCountsCallback",
    "RngStateCallback",
    "TimeBudgetCallback",
]
