"""What `allennlp train` and `allennlp predict` print, run as a user runs them: the parameter
counts before training begins, the predictions, none of AllenNLP's inventory of the model
(config values, the frozen backbone by name, the optimizer's groups, batch tensors), which
`ALLENNLP_LOG_LEVEL=DEBUG` still shows; and the shipped optimizer groups warn of nothing."""
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
from allennlp.common import Params
from allennlp.training.optimizers import make_parameter_groups

from allennlp_lpt import logs
from config_swap import CONFIGS, ROOT, tiny_config

# What AllenNLP 2.10 logs on every run that no user acts on, by the text that gives it away.
NOISE = {
    "the untouched backbone listed as 'default initialization'": "using their default initialization",
    "the frozen weights by name": "The following parameters are Frozen",
    "the trainable weights by name": "The following parameters are Tunable",
    "a pretrained weight by name": "embeddings.word_embeddings.weight",
    "the optimizer's groups by name": "Group 0: [",
    "a group regex for another family": "does not match any parameter name",
    "the first batch's tensors": "batch_input/",
    "a tensor dump": "tensor([",
    "every config value": "allennlp.common.params",
}
# A log record's start, as AllenNLP formats it (progress bars and continuation lines lack it).
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ - [A-Z]+ - ")


def _user_env(**extra: str) -> Dict[str, str]:
    """The environment as a user's shell has it, with no log level set, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key not in ("ALLENNLP_LOG_LEVEL", "ALLENNLP_DEBUG")}
    return {**env, **extra}


def _allennlp(*args: str, env: Dict[str, str]) -> List[str]:
    """Runs `python -m allennlp ...` from the repository root; the lines a terminal shows, in
    order (stderr into stdout). Fails with the output if the command fails."""
    run = subprocess.run(
        [sys.executable, "-m", "allennlp", *args], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=300, env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    return run.stdout.splitlines()


def _train(tiny_models: Dict[str, str], folder: Path, env: Dict[str, str]) -> List[str]:
    """`allennlp train` of the quickstart on a tiny RoBERTa, one epoch, into folder/run."""
    config = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(folder),
                         family="roberta", epochs=1)
    return _allennlp("train", config, "-s", str(folder / "run"), env=env)


@pytest.fixture(scope="module")
def trained(tiny_models, tmp_path_factory) -> Tuple[Path, List[str]]:
    folder = tmp_path_factory.mktemp("logs")
    return folder, _train(tiny_models, folder, _user_env())


def test_the_training_log_shows_the_parameter_counts_before_anything_else_of_substance(trained):
    folder, lines = trained
    counts = json.loads((folder / "run" / "parameter_counts.json").read_text())
    expected = (f"trainable params: {counts['trainable']:,} || all params: {counts['total']:,} || "
                f"trainable%: {100 * counts['trainable'] / counts['total']:.4f}")
    for shown in (lines, (folder / "run" / "out.log").read_text().splitlines()):  # out.log: what the run keeps
        # Log records, not progress bars (on the terminal as they are, in out.log as records).
        records = [line for line in shown if RECORD.match(line) and " - tqdm - " not in line]
        where = [i for i, line in enumerate(records) if line.endswith(expected)]
        assert len(where) == 1, "\n".join(records[:20])
        # The fifth record at most, right before training begins: only the plugin, PyTorch's
        # version, the vocabulary and a warning come first (AllenNLP 2.10 put it after some 370).
        assert where[0] < 5 and records[where[0] + 1].endswith("Beginning training."), "\n".join(records[:20])


@pytest.mark.parametrize("what", sorted(NOISE))
def test_the_training_log_has_no_inventory_of_the_model(trained, what):
    folder, lines = trained
    for shown in (lines, (folder / "run" / "out.log").read_text().splitlines()):
        assert not [line for line in shown if NOISE[what] in line], what


def test_one_prediction_prints_a_handful_of_lines(trained):
    folder, _ = trained
    (folder / "in.jsonl").write_text('{"sentence": "a warm and funny film ."}\n')
    printed = _allennlp("predict", str(folder / "run" / "model.tar.gz"), str(folder / "in.jsonl"),
                        "--predictor", "lpt_classifier", env=_user_env())
    lines = [line for line in printed if line.strip()]
    assert not [line for line in lines if "Loading weights" in line]
    assert len(lines) <= 5, "\n".join(lines)  # AllenNLP 2.10 printed some 180
    prediction = json.loads(next(line for line in lines if line.startswith("prediction:"))[len("prediction:"):])
    assert prediction["label"] in {"0", "1"}


def test_the_details_are_shown_at_debug_level(tiny_models, tmp_path):
    lines = _train(tiny_models, tmp_path, _user_env(ALLENNLP_LOG_LEVEL="DEBUG"))
    text = "\n".join(lines)
    for shown in ("DEBUG - allennlp.nn.initializers - Done initializing parameters; the following parameters "
                  "are using their default initialization",
                  "DEBUG - allennlp.common.util - The following parameters are Frozen (without gradient):",
                  "DEBUG - allennlp.training.optimizers - Group 0: [",
                  "DEBUG - allennlp.training.callbacks.console_logger - batch_input/tokens/tokens/token_ids",
                  "DEBUG - allennlp.common.params - trainer.optimizer.lr = 0.001"):
        assert shown in text, shown
    assert "Loading weights" in text  # transformers' bar, hidden at INFO
    kept = (tmp_path / "run" / "out.log").read_text()  # out.log keeps them too, at that level
    assert "DEBUG - allennlp.common.util - The following parameters are Frozen" in kept


def _shipped_groups() -> list:
    config = Params.from_file(os.path.join(CONFIGS, "quickstart.jsonnet")).as_dict(quiet=True)
    return config["trainer"]["optimizer"]["parameter_groups"]


def _groups(names: List[str], groups: list, caplog) -> List[List[str]]:
    """make_parameter_groups on parameters of these names: the names in each group."""
    parameters = [(name, torch.nn.Parameter(torch.zeros(1))) for name in names]
    by_id = {id(p): name for name, p in parameters}
    with caplog.at_level(logging.INFO):
        built = make_parameter_groups(parameters, groups)
    return [sorted(by_id[id(p)] for p in group["params"]) for group in built]


def test_the_shipped_no_decay_group_is_the_one_the_logs_know():
    assert _shipped_groups() == [[[logs.NO_DECAY_REGEX], {"weight_decay": 0}]]


@pytest.mark.parametrize("trains, exempt", [
    # Late prompt: the generator and a head.
    (["generator.down.bias", "generator.down.weight", "head.weight", "head.bias"], ["generator.down.bias", "head.bias"]),
    # Full fine-tuning of a BERT-like model and of GPT-2.
    (["layer.0.output.LayerNorm.weight", "layer.0.output.dense.weight"], ["layer.0.output.LayerNorm.weight"]),
    (["h.0.ln_1.weight", "ln_f.weight", "h.0.attn.c_attn.weight"], ["h.0.ln_1.weight", "ln_f.weight"]),
    # Full fine-tuning of Llama or Qwen3 (QK-norm) and of ModernBERT: their norms' own names.
    (["layers.0.input_layernorm.weight", "layers.0.post_attention_layernorm.weight", "layers.0.self_attn.q_norm.weight",
      "layers.0.self_attn.q_proj.weight", "norm.weight", "layers.0.mlp.down_proj.weight"],
     ["layers.0.input_layernorm.weight", "layers.0.post_attention_layernorm.weight", "layers.0.self_attn.q_norm.weight",
      "norm.weight"]),
    (["layers.1.attn_norm.weight", "layers.1.mlp_norm.weight", "final_norm.weight", "embeddings.norm.weight",
      "layers.1.attn.Wqkv.weight", "embeddings.tok_embeddings.weight"],
     ["layers.1.attn_norm.weight", "layers.1.mlp_norm.weight", "final_norm.weight", "embeddings.norm.weight"]),
    # Prompt tuning: nothing to exempt.
    (["prompt_encoder.default.embedding.weight"], []),
], ids=["late_prompt", "bert", "gpt2", "llama_qwen3", "modernbert", "prompt_tuning"])
def test_the_shipped_optimizer_exempts_biases_and_norm_weights_and_warns_of_nothing(trains, exempt, caplog):
    groups = _groups(trains, _shipped_groups(), caplog)
    # The authors' rule, by hand: no weight decay on biases and LayerNorm weights, 0.1 elsewhere.
    assert groups == ([sorted(exempt)] if exempt else [[]]) + [sorted(set(trains) - set(exempt))]
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_users_own_group_regex_that_matches_nothing_still_warns(caplog):
    groups = _shipped_groups() + [[["adapter\\.weight"], {"lr": 0.1}]]
    _groups(["generator.down.bias", "generator.down.weight"], groups, caplog)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == ["When constructing parameter groups, adapter\\.weight does not match any parameter name"]
