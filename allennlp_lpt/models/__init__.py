from allennlp_lpt.models.basic_classifier import LptBasicClassifier
from allennlp_lpt.models.late_prompt_classifier import LatePromptClassifier

__all__ = ["LatePromptClassifier", "LptBasicClassifier"]
