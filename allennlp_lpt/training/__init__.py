from allennlp_lpt.training.callbacks import RngStateCallback
from allennlp_lpt.training.learning_rate_schedulers import LinearWithWarmupFraction

__all__ = ["LinearWithWarmupFraction", "RngStateCallback"]
