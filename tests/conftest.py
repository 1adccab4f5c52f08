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


@pytest.fixture(scope="session")
def six_class(tiny_models, tmp_path_factory):
    """Two 6-class archives trained once per test run (tests/six_class.py)."""
    from six_class import train_six_class_archives

    return train_six_class_archives(tiny_models, tmp_path_factory.mktemp("six_class"))
