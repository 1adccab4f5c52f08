"""
allennlp-lpt: Late Prompt Tuning (Liu et al., Findings of EMNLP 2022) as AllenNLP components.

Importing the package registers every component, so `--include-package allennlp_lpt` and a
`.allennlp_plugins` file listing `allennlp_lpt` both find them.
"""
import allennlp_repair

# AllenNLP on transformers 5 and huggingface_hub 1: see allennlp_repair.py. The environment's .pth
# file installs it at interpreter start; this covers environments made without it.
allennlp_repair.install()

from allennlp_lpt import compat  # noqa: E402

# AllenNLP 2.10 defects a user would meet: see allennlp_lpt/compat.py.
compat.apply()

from allennlp_lpt import logs  # noqa: E402

# AllenNLP's inventory of the model at DEBUG, what a user acts on at INFO: see allennlp_lpt/logs.py.
logs.install()

from allennlp_lpt import backbones, commands  # noqa: E402,F401  (families, subcommands)
from allennlp_lpt.data.dataset_readers import TaskReader, TsvClassificationReader
from allennlp_lpt.generators import (
    AveragePoolingPromptGenerator,
    MaxPoolingPromptGenerator,
    NaivePromptGenerator,
    PromptGenerator,
    StaticPromptGenerator,
)
from allennlp_lpt.models import LatePromptClassifier
from allennlp_lpt.predictors import LatePromptClassifierPredictor
from allennlp_lpt.modules.seq2vec_encoders import (
    LatePromptCausalEncoder,
    LatePromptEncoder,
    LatePromptGPT2Encoder,
    LatePromptRobertaEncoder,
)
from allennlp_lpt.modules.token_embedders import LatePromptTransformerEmbedder
from allennlp_lpt.training import LinearWithWarmupFraction

__version__ = "0.1.0"

__all__ = [
    "AveragePoolingPromptGenerator",
    "LatePromptClassifier",
    "LatePromptCausalEncoder",
    "LatePromptClassifierPredictor",
    "LatePromptEncoder",
    "LatePromptGPT2Encoder",
    "LatePromptRobertaEncoder",
    "LatePromptTransformerEmbedder",
    "LinearWithWarmupFraction",
    "MaxPoolingPromptGenerator",
    "NaivePromptGenerator",
    "PromptGenerator",
    "StaticPromptGenerator",
    "TaskReader",
    "TsvClassificationReader",
]
