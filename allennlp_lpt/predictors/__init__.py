from allennlp_lpt.predictors.evaluator import FileOrderEvaluator
from allennlp_lpt.predictors.lpt_classifier import LatePromptClassifierPredictor
from allennlp_lpt.predictors.multi_task import MultiTaskPredictor

__all__ = ["FileOrderEvaluator", "LatePromptClassifierPredictor", "MultiTaskPredictor"]
