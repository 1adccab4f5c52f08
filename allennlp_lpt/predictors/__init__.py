from allennlp_lpt.predictors.lpt_classifier import LatePromptClassifierPredictor

__all__ = ["LatePromptClassifierPredictor"]
