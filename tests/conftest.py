import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from tiny_models import build_all  # noqa: E402

import allennlp_lpt  # noqa: E402,F401  (registers the components)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Folder paths of tiny models: roberta, gpt2, bert (with MLM head), bert_no_head."""
    return build_all(str(tmp_path_factory.mktemp("models")))
