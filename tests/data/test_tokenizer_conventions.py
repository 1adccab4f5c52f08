"""
Causal checkpoints' own input conventions, with tokenizers built as real checkpoints ship them
(`tiny_models.CONVENTIONS`): a BOS token exactly once where the tokenizer has one, whoever adds
it, none where it has none; padding without a pad token; right-padded batches from a tokenizer
that pads on the left. Each convention with a tiny model of each causal family, through the
pooled encoder and the generative verbalizer: read, train, archive, predict.
"""
import os

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.data import Batch
from allennlp.data.dataset_readers import DatasetReader
from allennlp.common import Params
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor
from transformers import AutoTokenizer

from config_swap import CONFIGS, task_fixture, tiny_config
from tiny_models import CONVENTIONS, build_causal_with_convention

QUICKSTART = os.path.join(CONFIGS, "quickstart.jsonnet")
SCORING = os.path.join(CONFIGS, "gpt2-large", "sst-2_full-data.jsonnet")
# Each convention on the model type whose real checkpoints use it, and on GPT-2.
MODELS = {"no_bos": "qwen2", "bos_by_tokenizer": "llama", "bos_by_template": "llama",
          "left_padding": "mistral"}


@pytest.fixture(scope="module")
def convention_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("conventions")
    built = {}
    for convention in CONVENTIONS:
        for model_type in (MODELS[convention], "gpt2"):
            folder = str(root / f"{model_type}-{convention}")
            built[convention, model_type] = build_causal_with_convention(folder, model_type, convention)
    return built


def _expected_prefix(convention: str, tokenizer) -> list:
    if convention == "no_bos":
        assert tokenizer.bos_token_id is None
        return []
    return [tokenizer.bos_token_id]


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_input_ids_follow_the_checkpoint_convention(convention_models, convention, family):
    model_type = MODELS[convention] if family == "llama" else "gpt2"
    folder = convention_models[convention, model_type]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    reader = DatasetReader.from_params(Params({"type": "lpt_tsv", "model_name": folder}))
    text = "the movie was great"
    ids = [token.text_id for token in reader.text_to_instance(text)["tokens"].tokens]
    words = tokenizer.encode(text, add_special_tokens=False)
    assert ids == _expected_prefix(convention, tokenizer) + words
    if tokenizer.bos_token_id is not None:
        assert ids.count(tokenizer.bos_token_id) == 1  # whether the tokenizer adds it or not


def test_gpt2_keeps_the_authors_bos_first_input(tiny_models):
    reader = DatasetReader.from_params(Params({"type": "lpt_tsv", "model_name": tiny_models["gpt2"]}))
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    ids = [token.text_id for token in reader.text_to_instance("a film")["tokens"].tokens]
    assert ids == [tokenizer.bos_token_id] + tokenizer.encode("a film", add_special_tokens=False)


def _padded_batch(reader, vocab):
    instances = [reader.text_to_instance(text, label="1") for text in
                 ("great", "the movie was really very good and fun", "a bad film")]
    for instance in instances:
        reader.apply_token_indexers(instance)
    batch = Batch(instances)
    batch.index_instances(vocab)
    return batch.as_tensor_dict()


def _train(config_path, folder, family, out):
    config = tiny_config(config_path, {family: folder}, str(out), family=family, epochs=1)
    train_model_from_file(config, str(out / "run"))
    return str(out / "run" / "model.tar.gz")


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("head", ["pooled", "verbalizer"])
def test_trains_archives_and_predicts(convention_models, convention, family, head, tmp_path):
    model_type = MODELS[convention] if family == "llama" else "gpt2"
    folder = convention_models[convention, model_type]
    archive = load_archive(_train(QUICKSTART if head == "pooled" else SCORING, folder, family, tmp_path))
    model, reader = archive.model, archive.dataset_reader
    model.eval()

    # Batches are right-padded whatever side the tokenizer pads on; padding takes the pad id,
    # or 0 where the tokenizer has none, and the mask keeps it unseen: other ids there change
    # nothing.
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokens = _padded_batch(reader, model.vocab)["tokens"]["tokens"]
    mask, ids = tokens["mask"], tokens["token_ids"]
    assert not mask.all() and torch.equal(mask, mask.cumsum(1) == torch.arange(1, mask.size(1) + 1))
    fill = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    assert (ids[~mask] == fill).all()
    with torch.no_grad():
        logits = model(tokens={"tokens": tokens})["logits"]
        other = dict(tokens, token_ids=torch.where(mask, ids, torch.randint_like(ids, 5, 50)))
        assert torch.allclose(model(tokens={"tokens": other})["logits"], logits, atol=1e-6)

    predictor = Predictor.from_archive(archive, "lpt_classifier")
    output = predictor.predict_json({"sentence": "a warm and funny film ."})
    assert output["label"] in {"0", "1"}
    assert set(output["class_probabilities"]) == {"0", "1"}
    # Every row of a task file, read through the archive's reader: the prefix once, no eos.
    prefix = _expected_prefix(convention, tokenizer)
    for instance in reader.read(task_fixture("sst-2")):
        ids = [token.text_id for token in instance["tokens"].tokens]
        assert ids[: len(prefix)] == prefix and tokenizer.eos_token_id not in ids
        if prefix:
            assert ids.count(prefix[0]) == 1
