"""
Every class of bad input, through `allennlp train` as a user meets it: a ConfigurationError whose
message names the key (or file and line) and the valid values, and a serialization directory
with nothing that a failed start could leave half-made (no weights, checkpoints, metrics or
archive; AllenNLP itself records config.json and out.log there).
"""
import json
import os

import pytest
from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from transformers import DistilBertConfig

from config_swap import CONFIGS, tiny_config

QUICKSTART = os.path.join(CONFIGS, "quickstart.jsonnet")
VERBALIZER = os.path.join(CONFIGS, "roberta-large", "sst-2_few-shot.jsonnet")
LOWER = ("model", "text_field_embedder", "token_embedders", "tokens")


def _set(config, path, value):
    for key in path[:-1]:
        config = config[key]
    config[path[-1]] = value


def _models(tiny_models, tmp_path):
    folder = tmp_path / "distilbert"
    DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=50).save_pretrained(folder)
    return {**tiny_models, "distilbert": str(folder), "missing": str(tmp_path / "no-such-model")}


def _bad_rows(tmp_path, content):
    path = tmp_path / "bad.tsv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


CASES = {
    "unknown generator type": (QUICKSTART, lambda c, m, t: _set(c, ("model", "seq2vec_encoder", "generator"), {"type": "npgx"}),
                               r"npgx not in acceptable choices for .*generator.type: \['npg', 'mppg', 'appg', 'static'\]"),
    "prompt layer out of range": (QUICKSTART, lambda c, m, t: [_set(c, LOWER + ("prompt_layer",), 7), _set(c, ("model", "seq2vec_encoder", "prompt_layer"), 7)],
                                  r"prompt_layer=7 is out of range .* 4 layers: use 0 .* to 3"),
    "prompt length below one": (QUICKSTART, lambda c, m, t: _set(c, ("model", "seq2vec_encoder", "prompt_length"), 0),
                                r"prompt_length=0: .*valid: >= 1"),
    "bottleneck below one": (QUICKSTART, lambda c, m, t: _set(c, ("model", "seq2vec_encoder", "generator"), {"type": "appg", "bottleneck": 0}),
                             r"generator.bottleneck=0 must be >= 1"),
    "label word not one token": (VERBALIZER, lambda c, m, t: _set(c, ("model", "label_words"), {"0": "terrible", "1": "xylophonic"}),
                                 r"label_words: 'xylophonic' is not one token"),
    "template without mask": (VERBALIZER, lambda c, m, t: _set(c, ("dataset_reader", "template"), "{s} . It was great ."),
                              r"dataset_reader.template=.*exactly one <mask>"),
    "missing model directory": (QUICKSTART, lambda c, m, t: _set(c, LOWER + ("model_name",), m["missing"]),
                                r"model_name=.*no-such-model.*no HuggingFace model config"),
    "unsupported family": (QUICKSTART, lambda c, m, t: _set(c, LOWER + ("model_name",), m["distilbert"]),
                           r"'distilbert' model.*Supported model types: bert, camembert, gpt2, llama, mistral, modernbert, qwen2, qwen3, roberta, xlm-roberta"),
    "components that disagree": (QUICKSTART, lambda c, m, t: _set(c, ("model", "seq2vec_encoder", "prompt_layer"), 1),
                                 r"model.text_field_embedder.token_embedders.tokens and model.seq2vec_encoder disagree: prompt_layer"),
    "cache keys without a late-prompt embedder": (QUICKSTART, lambda c, m, t: [
        _set(c, LOWER, {"type": "pretrained_transformer", "model_name": m["roberta"]}),
        _set(c, ("model", "seq2vec_encoder"), {"type": "cls_pooler", "embedding_dim": 32}),
        _set(c, ("dataset_reader", "cache_keys"), True)],
        r"dataset_reader.cache_keys is true.*does not \(token_embedders.tokens is pretrained_transformer\). Remove cache_keys"),
    "encoder on the wrong family": (QUICKSTART, lambda c, m, t: [_set(c, ("model", "seq2vec_encoder", "type"), "late_prompt_gpt2"),
                                                                  c["model"]["seq2vec_encoder"].pop("pooling")],
                                    r"late_prompt_gpt2 cannot run .* use the 'late_prompt_roberta' encoder"),
    "unknown task": (VERBALIZER, lambda c, m, t: _set(c, ("dataset_reader", "task"), "cola"),
                     r"dataset_reader.task='cola' is not a known task: use one of sst-2"),
    "row with a missing column": (QUICKSTART, lambda c, m, t: _set(c, ("train_data_path",), _bad_rows(t, "sentence\tlabel\ngood\t1\nno label here\n")),
                                  r"bad.tsv:3: the row has 1 column\(s\), the header has 2"),
    "row with an empty text": (QUICKSTART, lambda c, m, t: _set(c, ("train_data_path",), _bad_rows(t, "sentence\tlabel\n\t1\n")),
                               r"bad.tsv:2: the row has an empty text"),
    "row with an unknown label": (VERBALIZER, lambda c, m, t: _set(c, ("train_data_path",), _bad_rows(t, "sentence\tlabel\ngood\t3\n")),
                                  r"bad.tsv:2: the row has the label '3', which is not one of \['0', '1'\]"),
    "label outside the quickstart's label set": (QUICKSTART, lambda c, m, t: _set(c, ("train_data_path",), _bad_rows(t, "sentence\tlabel\ngood\t1\nbad\t2\n")),
                                                 r"bad.tsv:3: the row has the label '2', which is not one of \['0', '1'\]"),
    "empty file": (QUICKSTART, lambda c, m, t: _set(c, ("train_data_path",), _bad_rows(t, "")),
                   r"bad.tsv: no instances: it is empty"),
    "header and no rows": (QUICKSTART, lambda c, m, t: _set(c, ("train_data_path",), _bad_rows(t, "sentence\tlabel\n")),
                           r"bad.tsv: no instances: it has a header and no rows"),
    "row with an extra column": (QUICKSTART, lambda c, m, t: _set(c, ("train_data_path",), _bad_rows(t, "sentence\tlabel\ngood\t1\tmore\n")),
                                 r"bad.tsv:2: the row has 3 column\(s\), the header has 2"),
    "bytes that are not UTF-8": (QUICKSTART, lambda c, m, t: _set(c, ("train_data_path",), _bad_rows(t, b"sentence\tlabel\ngood\t1\ncaf\xe9\t1\n")),
                                 r"bad.tsv:3: the line is not UTF-8 \(byte 0xe9 at column 4\)"),
    "data file that does not exist": (QUICKSTART, lambda c, m, t: _set(c, ("validation_data_path",), str(t / "no-such.tsv")),
                                      r"'.*no-such.tsv': no such file .* \(train_data_path, validation_data_path or test_data_path\)"),
    "header without the columns": (QUICKSTART, lambda c, m, t: _set(c, ("train_data_path",), _bad_rows(t, "text\tgold\ngood\t1\n")),
                                   r"bad.tsv:1: the header .* lacks the column"),
    "input that cannot fit": (VERBALIZER, lambda c, m, t: _set(c, ("dataset_reader", "max_length"), 6),
                              r"sst-2.tsv:2: .*no room for the text within max_length=6"),
}
LEFT_BY_ALLENNLP = {"config.json", "meta.json", "out.log"}
# Which reader feeds which model is known only when a batch reaches the model: by then
# AllenNLP has written the vocabulary too.
AT_THE_FIRST_BATCH = {"cache keys without a late-prompt embedder"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_clear_configuration_error_and_leaves_nothing_half_made(tiny_models, tmp_path, case):
    config_file, change, message = CASES[case]
    models = _models(tiny_models, tmp_path)
    config = json.load(open(tiny_config(config_file, tiny_models, str(tmp_path), family="roberta", epochs=1)))
    change(config, models, tmp_path)
    run = tmp_path / "run"
    with pytest.raises(ConfigurationError, match=message):
        train_model(Params(config), str(run))
    left = set(os.listdir(run)) if run.exists() else set()
    allowed = LEFT_BY_ALLENNLP | ({"vocabulary"} if case in AT_THE_FIRST_BATCH else set())
    assert left <= allowed, left


def test_the_error_is_the_last_thing_a_user_sees(tiny_models, tmp_path):
    """From the command line, the message that names the file, the line and the fix ends the
    output: no traceback or log line after it hides it."""
    import subprocess
    import sys

    from config_swap import ROOT

    config = json.load(open(tiny_config(QUICKSTART, tiny_models, str(tmp_path), family="roberta", epochs=1)))
    config["train_data_path"] = _bad_rows(tmp_path, "sentence\tlabel\ngood\t1\nbad\t7\n")
    path = tmp_path / "bad_config.json"
    path.write_text(json.dumps(config))
    done = subprocess.run([sys.executable, "-m", "allennlp", "train", str(path), "-s", str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert "bad.tsv:3: the row has the label '7', which is not one of ['0', '1']" in last, done.stderr[-2000:]
