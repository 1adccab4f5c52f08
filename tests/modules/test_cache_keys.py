"""
Cache keys computed once by the data pipeline (`cache_keys: true` on the readers): they name the
same entries as keys computed from a batch, `allennlp train` uses them, and with them a cached
step reads nothing back from the device.
"""
import json
import os

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common import Params
from allennlp.data import Batch, DatasetReader, Vocabulary

from allennlp_lpt.data.fields import CacheKeyedTextField
from allennlp_lpt.modules.token_embedders import LatePromptTransformerEmbedder
from config_swap import CONFIGS, tiny_config
from modules.test_lower_state_cache import MORE, count_stack_rows, embedder


def read(model_dir, texts, *, cache_keys=True):
    reader = DatasetReader.from_params(
        Params({"type": "lpt_tsv", "model_name": model_dir, "cache_keys": cache_keys})
    )
    instances = [reader.text_to_instance(text) for text in texts]
    for instance in instances:
        reader.apply_token_indexers(instance)
    batch = Batch(instances)
    batch.index_instances(Vocabulary())
    return instances, batch.as_tensor_dict()["tokens"]["tokens"]


def keyed_cached_classifier(tiny_models, family):
    """A basic_classifier over a cached late_prompt_transformer, and a keyed batch of MORE's
    texts (its text field's tensors, `row_keys` included), both on the CPU."""
    from allennlp.models import Model

    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["0", "1"], namespace="labels")
    shared = {"model_name": tiny_models[family], "prompt_layer": 2}
    encoder = "late_prompt_gpt2" if family == "gpt2" else "late_prompt_roberta"
    model = Model.from_params(vocab=vocab, params=Params({
        "type": "basic_classifier",
        "text_field_embedder": {"token_embedders": {"tokens": {"type": "late_prompt_transformer", "cache": True, **shared}}},
        "seq2vec_encoder": {"type": encoder, **shared, "prompt_length": 4, "generator": {"type": "npg"}},
    }))
    return model, read(tiny_models[family], MORE)[1]


@pytest.mark.parametrize("family", ["roberta", "gpt2"])
def test_row_keys_follow_the_rows_and_name_equal_texts_equally(tiny_models, family):
    texts = [MORE[0], MORE[2], MORE[0]]
    instances, tensors = read(tiny_models[family], texts)
    rows = tensors["row_keys"]
    assert list(rows.lengths) == tensors["mask"].sum(dim=1).tolist()
    assert rows.keys[0] == rows.keys[2] != rows.keys[1]
    duplicate = instances[0].duplicate()
    assert isinstance(duplicate.fields["tokens"], CacheKeyedTextField)
    # Without the option a batch is AllenNLP's plain one.
    assert "row_keys" not in read(tiny_models[family], texts, cache_keys=False)[1]


@pytest.mark.parametrize("family", ["roberta", "gpt2"])
def test_keys_from_the_reader_and_from_the_batch_find_the_same_entries(tiny_models, family):
    _, tensors = read(tiny_models[family], MORE)
    plain = {name: value for name, value in tensors.items() if name != "row_keys"}
    expected = embedder(tiny_models[family]).eval()(**plain)
    mask = tensors["mask"]
    for first, second in [(plain, tensors), (tensors, plain)]:
        cached = embedder(tiny_models[family], cache=True)
        rows = count_stack_rows(cached)
        cached(**first)
        got = cached(**second)
        assert rows == [len(MORE)]  # the second pass, keyed the other way, ran nothing
        assert cached.cache.hits == len(MORE)
        torch.testing.assert_close(got[mask], expected[mask], atol=1e-5, rtol=1e-5)


def test_a_cached_step_with_reader_keys_reads_nothing_back_from_the_device(tiny_models):
    """On the `meta` device a tensor has no values: anything that reads one back to the host
    (`.cpu()`, `.item()`, `bool()`, boolean indexing, ...) raises. The keyed cached forward,
    storing (first epoch) and reading back (second), runs there; keying from the batch cannot."""
    _, tensors = read(tiny_models["roberta"], MORE)
    cached = embedder(tiny_models["roberta"], cache=True).train()
    assert cached.cache is not None  # the store is set up (it fingerprints the weights) first
    cached.to("meta")
    on_meta = {name: value.to("meta") if torch.is_tensor(value) else value for name, value in tensors.items()}
    for epoch in range(2):
        states = cached(**on_meta)
        assert states.device.type == "meta"
        assert states.shape == (len(MORE), tensors["token_ids"].size(1), cached.get_output_dim())
    assert cached.cache.misses == len(MORE) and cached.cache.hits == len(MORE)
    unkeyed = {name: value for name, value in on_meta.items() if name != "row_keys"}
    with pytest.raises((NotImplementedError, RuntimeError)):
        cached(**unkeyed)


@pytest.mark.parametrize("family", ["roberta", "gpt2"])
def test_a_whole_cached_training_step_reads_nothing_back_but_its_deferred_checks(tiny_models, family, monkeypatch):
    """basic_classifier over the keyed cache: forward and backward on the `meta` device. The
    only reads are the batch checks, which a GPU reads a step later (`BatchCheck`, tested in
    test_right_padding), and AllenNLP's accuracy metric (not ours: no label is given here)."""
    from allennlp_lpt.core.checks import BatchCheck

    checked = []
    monkeypatch.setattr(BatchCheck, "__call__", lambda self, bad_rows, message: checked.append(bad_rows.shape))
    model, tensors = keyed_cached_classifier(tiny_models, family)
    model.train()
    model(tokens={"tokens": tensors})  # the first epoch (states stored)
    model.to("meta")
    on_meta = {name: value.to("meta") if torch.is_tensor(value) else value for name, value in tensors.items()}
    logits = model(tokens={"tokens": on_meta})["logits"]
    labels = torch.zeros(len(MORE), dtype=torch.long, device="meta")
    torch.nn.functional.cross_entropy(logits, labels).backward()
    assert checked == [(len(MORE),)] * 2  # the encoder checked both batches' masks


@pytest.mark.parametrize("config_name, family", [
    ("quickstart.jsonnet", "roberta"),
    # The causal verbalizer appends each row's gold answer: its rows are keyed from the
    # reader's keys and labels, one entry per instance.
    (os.path.join("gpt2-large", "sst-2_full-data.jsonnet"), "gpt2"),
])
def test_allennlp_train_uses_the_readers_keys_and_trains_as_without_cache(
    tiny_models, tmp_path, monkeypatch, config_name, family
):
    from allennlp_lpt.core.cache import LowerStateCache

    def unkeyed(*args, **kwargs):
        raise AssertionError("the batch came without the reader's keys")

    stored = []
    store = LowerStateCache._store

    def recording(self, keys, lengths, computed):
        stored.extend(keys)
        return store(self, keys, lengths, computed)

    monkeypatch.setattr(LatePromptTransformerEmbedder, "_keys_from_batch", unkeyed)
    monkeypatch.setattr(LowerStateCache, "_store", recording)
    metrics = {}
    for name, cached in [("cached", True), ("plain", False)]:
        path = tiny_config(os.path.join(CONFIGS, config_name), tiny_models, str(tmp_path),
                           family=family, epochs=2)
        config = json.load(open(path))
        lower = config["model"]["text_field_embedder"]["token_embedders"]["tokens"]
        lower.update({"cache": True} if cached else {"lower_dropout": False})
        for reader in ("dataset_reader", "validation_dataset_reader"):
            if reader in config:
                config[reader]["cache_keys"] = cached
        config["data_loader"] = {"batch_size": 3, "shuffle": True}
        config.pop("test_data_path", None), config.pop("evaluate_on_test", None)
        (tmp_path / f"{name}.json").write_text(json.dumps(config))
        train_model_from_file(str(tmp_path / f"{name}.json"), str(tmp_path / name))
        metrics[name] = json.loads((tmp_path / name / "metrics.json").read_text())
        if cached:
            with open(config["train_data_path"]) as handle:
                instances = sum(1 for line in handle if line.strip()) - 1  # the header
            assert len(stored) == len(set(stored)) == instances  # one entry per instance
    for key in ("training_loss", "validation_loss", "validation_accuracy"):
        assert metrics["cached"][key] == pytest.approx(metrics["plain"][key], rel=1e-4, abs=1e-5), key


def test_an_instance_twice_in_one_batch_is_stored_once(tiny_models):
    texts = [MORE[0], MORE[1], MORE[0]]
    _, tensors = read(tiny_models["roberta"], texts)
    plain = {name: value for name, value in tensors.items() if name != "row_keys"}
    expected = embedder(tiny_models["roberta"]).eval()(**plain)
    cached = embedder(tiny_models["roberta"], cache=True)
    cached(**tensors)
    got = cached(**tensors)
    assert len(cached.cache) == 2
    assert cached.cache.memory_used == sum(tensors["row_keys"].lengths[:2]) * cached.get_output_dim() * 4
    torch.testing.assert_close(got[tensors["mask"]], expected[tensors["mask"]], atol=1e-5, rtol=1e-5)


def test_cache_keys_for_a_model_without_a_late_prompt_embedder_names_the_config_key(tiny_models):
    from allennlp.common.checks import ConfigurationError
    from allennlp.modules import TextFieldEmbedder

    _, tensors = read(tiny_models["roberta"], MORE[:2])
    plain = TextFieldEmbedder.from_params(Params({"token_embedders": {"tokens": {
        "type": "pretrained_transformer", "model_name": tiny_models["roberta"]}}}))
    with pytest.raises(ConfigurationError, match=r"dataset_reader.cache_keys is true.*Remove cache_keys"):
        plain({"tokens": tensors})
    without = {name: value for name, value in tensors.items() if name != "row_keys"}
    assert plain({"tokens": without}).shape[:2] == tensors["token_ids"].shape  # valid input: as before
