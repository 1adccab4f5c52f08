"""AllenNLP 2.10.1 on transformers 5 and huggingface_hub 1 through `allennlp_repair`: AllenNLP's
own components (its tokenizer, indexer, embedder, `huggingface_adamw` optimizer, language-model
collator, `push-to-hf`) behave as AllenNLP's tests and transformers 4.x had them, and `make
install` loads the repair from the environment's .pth file only, harmlessly where the module is
missing."""
import json
import math
import os
import subprocess
import sys
import sysconfig
import venv

import numpy
import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.data.token_indexers import PretrainedTransformerIndexer
from allennlp.data.tokenizers import PretrainedTransformerTokenizer
from allennlp.modules.token_embedders import PretrainedTransformerEmbedder
from allennlp.training.optimizers import Optimizer
from transformers import AutoModel, AutoTokenizer

from config_swap import ROOT

WORDS = ["the", "movie", "was", "great"]


def texts(tokens):
    return [t.text for t in tokens]


# --- the tokenizer and indexer, as AllenNLP's own tests have them --------------------------


def test_bert_tokenizer_adds_cls_and_sep_with_type_ids_per_segment(tiny_models):
    tokenizer = PretrainedTransformerTokenizer(tiny_models["bert"])
    assert texts(tokenizer.tokenize("the movie was great")) == ["[CLS]", *WORDS, "[SEP]"]
    pair = tokenizer.add_special_tokens(tokenizer.tokenize("it was")[1:-1], tokenizer.tokenize("a plot")[1:-1])
    assert texts(pair) == ["[CLS]", "it", "was", "[SEP]", "a", "plot", "[SEP]"]
    assert [t.type_id for t in pair] == [0, 0, 0, 0, 1, 1, 1]


def test_roberta_tokenizer_pairs_with_double_separator_and_type_ids_zero(tiny_models):
    tokenizer = PretrainedTransformerTokenizer(tiny_models["roberta"])
    single = tokenizer.tokenize("the movie was great")
    assert texts(single)[0] == "<s>" and texts(single)[-1] == "</s>" and len(single) == 6
    pair = tokenizer.add_special_tokens(single[1:-1], tokenizer.tokenize("it was")[1:-1])
    assert texts(pair) == ["<s>", *texts(single[1:-1]), "</s>", "</s>", *texts(tokenizer.tokenize("it was")[1:-1]), "</s>"]
    assert {t.type_id for t in pair} == {0}


def test_gpt2_tokenizer_adds_nothing(tiny_models):
    tokenizer = PretrainedTransformerTokenizer(tiny_models["gpt2"])
    hf = AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    tokens = tokenizer.tokenize("the movie was great")
    assert [t.text_id for t in tokens] == hf.encode("the movie was great")
    assert tokenizer.single_sequence_start_tokens == [] and tokenizer.single_sequence_end_tokens == []


def test_intra_word_tokenize_gives_each_word_its_wordpieces(tiny_models):
    tokenizer = PretrainedTransformerTokenizer(tiny_models["bert"])
    tokens, offsets = tokenizer.intra_word_tokenize(["the", "moviegoer", "great"])
    assert tokens[0].text == "[CLS]" and tokens[-1].text == "[SEP]"
    assert offsets[0] == (1, 1) and offsets[2] == (len(tokens) - 2, len(tokens) - 2)
    start, end = offsets[1]
    assert "".join(t.text.replace("##", "") for t in tokens[start:end + 1]) == "moviegoer"


def test_indexer_with_max_length_folds_into_segments_each_with_special_tokens(tiny_models):
    """AllenNLP's `test_long_sequence_splitting`: every segment of `max_length` has its own
    [CLS] ... [SEP] and the type ids to match."""
    tokenizer = PretrainedTransformerTokenizer(tiny_models["bert"])
    indexer = PretrainedTransformerIndexer(tiny_models["bert"], max_length=4)
    hf = AutoTokenizer.from_pretrained(tiny_models["bert"])
    cls, sep = hf.cls_token_id, hf.sep_token_id
    tokens = tokenizer.tokenize("the movie was great and fun")
    inner = [t.text_id for t in tokens[1:-1]]
    indexed = indexer.tokens_to_indices(tokens, Vocabulary())
    expected = []
    for i in range(0, len(inner), 2):
        expected += [cls, *inner[i:i + 2], sep]
    assert indexed["token_ids"] == expected
    assert indexed["type_ids"] == [0] * len(expected)
    assert indexed["segment_concat_mask"] == [True] * len(expected)


# --- the embedder -------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["bert_no_head", "roberta", "gpt2"])
def test_pretrained_transformer_embedder_gives_the_models_own_last_states(tiny_models, family):
    embedder = PretrainedTransformerEmbedder(tiny_models[family]).eval()
    hf = AutoModel.from_pretrained(tiny_models[family]).eval()
    ids = torch.tensor([[5, 17, 30, 41, 8, 9], [5, 22, 31, 7, 0, 0]])
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2], dtype=torch.bool)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        states = embedder(ids, mask)
    torch.testing.assert_close(states[mask], expected[mask], atol=1e-5, rtol=1e-5)


# --- huggingface_adamw: transformers 4.x's algorithm ----------------------------------------


def adamw_4x_reference(weights, gradients, *, lr, betas, eps, weight_decay, correct_bias):
    """transformers 4.x's AdamW, written out in float64 NumPy: epsilon added to sqrt(v) before
    the bias correction of the step size, weight decay after the step."""
    p = numpy.array(weights, dtype=numpy.float64)
    m = numpy.zeros_like(p)
    v = numpy.zeros_like(p)
    for t, g in enumerate(gradients, start=1):
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        step = lr * math.sqrt(1 - betas[1] ** t) / (1 - betas[0] ** t) if correct_bias else lr
        p = p - step * m / (numpy.sqrt(v) + eps)
        p = p - lr * weight_decay * p
    return p


@pytest.mark.parametrize("correct_bias", [True, False])
def test_huggingface_adamw_computes_transformers_4_adamw(correct_bias):
    generator = numpy.random.default_rng(0)
    start = generator.normal(size=8)
    # Small gradients, where epsilon's placement matters.
    gradients = [generator.normal(size=8) * 1e-6 for _ in range(5)]
    settings = dict(lr=1e-2, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1, correct_bias=correct_bias)
    weight = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    optimizer = Optimizer.from_params(
        model_parameters=[("weight", weight)],
        params=Params({"type": "huggingface_adamw", **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}}),
    )
    for gradient in gradients:
        weight.grad = torch.tensor(gradient)
        optimizer.step()
    expected = adamw_4x_reference(start, gradients, **settings)
    numpy.testing.assert_allclose(weight.detach().numpy(), expected, rtol=1e-12, atol=1e-14)
    # torch's AdamW, which places epsilon and the decay otherwise, ends elsewhere.
    other = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    torch_adamw = torch.optim.AdamW([other], lr=1e-2, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1)
    for gradient in gradients:
        other.grad = torch.tensor(gradient)
        torch_adamw.step()
    assert not numpy.allclose(other.detach().numpy(), expected, rtol=1e-6, atol=0)


def test_huggingface_adamw_state_is_what_transformers_4_saved():
    """A training state saved by transformers 4.x's optimizer (step an int, two moments) is what
    `--recover` loads into it (with torch's weights_only loading)."""
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = Optimizer.from_params(model_parameters=[("w", weight)], params=Params({"type": "huggingface_adamw"}))
    weight.grad = torch.ones(3)
    optimizer.step()
    state = optimizer.state_dict()["state"][0]
    assert state["step"] == 1 and isinstance(state["step"], int)
    assert sorted(state) == ["exp_avg", "exp_avg_sq", "step"]


# --- the language-model collator, push-to-hf ------------------------------------------------


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_language_modeling_collator_masks_with_the_probability_given(tiny_models, probability):
    from allennlp.data.data_loaders.data_collator import LanguageModelingDataCollator

    collator = LanguageModelingDataCollator(tiny_models["bert"], True, probability)
    hf = AutoTokenizer.from_pretrained(tiny_models["bert"])
    ids = torch.tensor([hf.encode("the movie was great and it was fun") for _ in range(4)])
    batch = {"source": {"tokens": {"token_ids": ids.clone()}}}
    labels = collator.process_tokens(batch)["source"]["tokens"]["labels"]
    special = torch.tensor([[i in hf.all_special_ids for i in row] for row in ids.tolist()])
    if probability == 0.0:
        assert (labels == -100).all()
    else:
        assert (labels[~special] == ids[~special]).all() and (labels[special] == -100).all()


def test_push_to_hf_refuses_naming_the_replacement():
    import huggingface_hub
    from allennlp.commands.push_to_hf import push_to_hf

    with pytest.raises(ConfigurationError, match=r"huggingface_hub\.upload_folder.*HfApi\(\)\.upload_folder"):
        push_to_hf(repo_name="someone/model", serialization_dir=ROOT)
    # The stand-ins were lent to AllenNLP's import only: huggingface_hub is as it was.
    assert not hasattr(huggingface_hub, "HfFolder") and not hasattr(huggingface_hub, "Repository")


def test_transformers_is_left_without_adamw():
    import transformers

    assert not hasattr(transformers, "AdamW")


# --- the .pth file ------------------------------------------------------------------------


def test_make_install_writes_the_pth_into_the_environment_only_harmless_without_the_module(tmp_path):
    """The Makefile's rule writes the .pth line into the given environment's site-packages and
    nowhere else; there, where `allennlp_repair` cannot be found, Python starts silently."""
    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    (env / ".installed").touch()  # the install step is not what this tests
    before = set(os.listdir(sysconfig.get_paths()["purelib"]))
    make = subprocess.run(["make", "-s", f"VENV={env}", f"{env}/.repair"], cwd=ROOT, capture_output=True, text=True)
    assert make.returncode == 0, make.stderr
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert "allennlp_lpt_repair.pth" in os.listdir(purelib)
    assert set(os.listdir(sysconfig.get_paths()["purelib"])) == before  # this environment's untouched
    run = subprocess.run([str(python), "-c", "import sys; print('allennlp_repair' in sys.modules)"],
                         capture_output=True, text=True, cwd=str(tmp_path))
    assert (run.returncode, run.stdout.strip(), run.stderr) == (0, "False", "")


def test_stock_allennlp_train_without_the_package(tiny_models, tmp_path, monkeypatch):
    """`allennlp train` with AllenNLP's own components only (pretrained_transformer embedder,
    huggingface_adamw, a slanted-triangular schedule), no --include-package and no plugins file:
    the repair that `make install`'s .pth file loads is all it needs (AllenNLP imports its
    commands first); `allennlp evaluate` of the archive gives the validation metrics of training."""
    reader = {"type": "text_classification_json",
              "tokenizer": {"type": "pretrained_transformer", "model_name": tiny_models["bert_no_head"]},
              "token_indexers": {"tokens": {"type": "pretrained_transformer", "model_name": tiny_models["bert_no_head"]}}}
    config = {
        "dataset_reader": reader,
        "train_data_path": str(tmp_path / "train.jsonl"), "validation_data_path": str(tmp_path / "train.jsonl"),
        "model": {"type": "basic_classifier", "namespace": "tags",
                  "text_field_embedder": {"token_embedders": {"tokens": {
                      "type": "pretrained_transformer", "model_name": tiny_models["bert_no_head"]}}},
                  "seq2vec_encoder": {"type": "cls_pooler", "embedding_dim": 32}},
        "data_loader": {"batch_size": 4},
        "trainer": {"num_epochs": 1, "optimizer": {"type": "huggingface_adamw", "lr": 1e-3},
                    "learning_rate_scheduler": {"type": "slanted_triangular"}, "cuda_device": -1},
    }
    lines = [json.dumps({"text": t, "label": label}) for label, t in
             [("1", "a great movie"), ("0", "a boring plot"), ("1", "really fun"), ("0", "bad acting")] * 2]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "config.json").write_text(json.dumps(config))
    # No plugins file here nor in HOME: allennlp_lpt is not imported.
    env = dict(os.environ, HOME=str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "allennlp", "train", str(tmp_path / "config.json"), "-s", str(tmp_path / "run")],
                         cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "allennlp_lpt" not in run.stderr
    from allennlp.commands import main

    monkeypatch.setattr(sys, "argv", ["allennlp", "evaluate", str(tmp_path / "run" / "model.tar.gz"),
                                      str(tmp_path / "train.jsonl"), "--output-file", str(tmp_path / "eval.json")])
    main(prog="allennlp")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert evaluation["accuracy"] == metrics["validation_accuracy"]
    assert evaluation["loss"] == pytest.approx(metrics["validation_loss"], rel=1e-5)
