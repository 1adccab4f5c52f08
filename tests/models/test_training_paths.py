"""Each family through each component path trains, saves and loads (AllenNLP's ModelTestCase)."""
import os
import tarfile

import pytest
import torch
from allennlp.common.testing import ModelTestCase

from config_swap import CONFIGS, FIXTURES, tiny_config

QUICKSTART = os.path.join(CONFIGS, "quickstart.jsonnet")
ROBERTA_VERBALIZER = os.path.join(CONFIGS, "roberta-large", "sst-2_full-data.jsonnet")
GPT2_SCORING = os.path.join(CONFIGS, "gpt2-large", "sst-2_full-data.jsonnet")

PATHS = [
    # basic_classifier: late_prompt_transformer + the family's encoder + a linear head
    pytest.param(QUICKSTART, "bert", id="basic_classifier-bert"),
    pytest.param(QUICKSTART, "roberta", id="basic_classifier-roberta"),
    pytest.param(QUICKSTART, "gpt2", id="basic_classifier-gpt2"),
    pytest.param(QUICKSTART, "llama", id="basic_classifier-llama"),
    pytest.param(QUICKSTART, "modernbert", id="basic_classifier-modernbert"),
    pytest.param(QUICKSTART, "qwen3", id="basic_classifier-qwen3"),
    # late_prompt_classifier: the paper's verbalizer / generative scoring
    pytest.param(ROBERTA_VERBALIZER, "roberta", id="verbalizer-roberta"),
    pytest.param(ROBERTA_VERBALIZER, "bert", id="verbalizer-bert"),
    pytest.param(GPT2_SCORING, "gpt2", id="scoring-gpt2"),
    pytest.param(GPT2_SCORING, "llama", id="scoring-llama"),
    pytest.param(ROBERTA_VERBALIZER, "modernbert", id="verbalizer-modernbert"),
    pytest.param(GPT2_SCORING, "qwen3", id="scoring-qwen3"),
]


class TestTrainingPaths(ModelTestCase):
    @pytest.fixture(autouse=True)
    def _models(self, tiny_models, tmp_path):
        self.tiny_models = tiny_models
        self.tmp = tmp_path

    @pytest.mark.parametrize("config,family", PATHS)
    def test_trains_saves_and_loads(self, config, family):
        param_file = tiny_config(config, self.tiny_models, str(self.tmp), family=family)
        self.set_up_model(param_file, os.path.join(FIXTURES, "tasks", "sst-2.tsv"), seed=1)
        model, loaded = self.ensure_model_can_train_save_and_load(param_file, seed=1)
        # Padding must not change a prediction (AllenNLP's own check, on the loaded model).
        self.model = loaded
        self.ensure_batch_predictions_are_consistent()
        # Only the generator (and a linear head where the config has one) trained.
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        assert trainable and all(("generator" in n) or n.startswith("_classification_layer") for n in trainable)

    def test_archive_weights_load_with_torch_weights_only(self):
        param_file = tiny_config(ROBERTA_VERBALIZER, self.tiny_models, str(self.tmp), family="roberta")
        self.set_up_model(param_file, os.path.join(FIXTURES, "tasks", "sst-2.tsv"))
        from allennlp.commands.train import train_model_from_file

        train_model_from_file(param_file, str(self.tmp / "run"))
        with tarfile.open(self.tmp / "run" / "model.tar.gz") as archive:
            archive.extract("weights.th", self.tmp, filter="data")
        state = torch.load(self.tmp / "weights.th", weights_only=True)
        assert any("generator" in key for key in state)
