"""The lower-layer cache: exact, bounded, disk-backed, never stale, and transparent to training."""
import json
import os

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common import Params
from allennlp.modules import TokenEmbedder
from torch.overrides import TorchFunctionMode

from config_swap import CONFIGS, tiny_config
from modules.test_late_prompt_components import TEXTS, tokenize

MORE = TEXTS + ["it was fun", "the story was good , the acting was great and it was fun"]


def embedder(model_dir, prompt_layer=2, **settings):
    return TokenEmbedder.from_params(
        Params({"type": "late_prompt_transformer", "model_name": model_dir, "prompt_layer": prompt_layer, **settings})
    )


def count_stack_rows(module):
    calls = []
    original = module.stack.forward

    def counting(token_ids, *args, **kwargs):
        calls.append(token_ids.size(0))
        return original(token_ids, *args, **kwargs)

    module.stack.forward = counting
    return calls


@pytest.mark.parametrize("family", ["roberta", "gpt2"])
def test_cached_states_equal_eval_mode_states_across_epochs_and_shuffles(tiny_models, family):
    reference = embedder(tiny_models[family]).eval()
    cached = embedder(tiny_models[family], cache=True).train()  # train mode: the stack stays eval
    rows = count_stack_rows(cached)
    ids, mask = tokenize(tiny_models[family], family, MORE)
    for epoch, order in enumerate([[0, 1, 2, 3], [3, 1], [2, 0, 1, 3]]):
        index = torch.tensor(order)
        batch_ids, batch_mask = ids[index], mask[index]
        width = int(batch_mask.sum(1).max())  # re-padded to this batch's longest, as a loader does
        batch_ids, batch_mask = batch_ids[:, :width], batch_mask[:, :width]
        expected = reference(batch_ids, batch_mask)
        got = cached(batch_ids, batch_mask)
        torch.testing.assert_close(got[batch_mask], expected[batch_mask], atol=1e-5, rtol=1e-5)
        assert got.grad_fn is None
    assert rows == [4]  # only the first batch ran the lower layers
    assert cached.cache.hits == 6 and cached.cache.misses == 4


def test_float16_storage_halves_memory_and_stays_close(tiny_models):
    ids, mask = tokenize(tiny_models["roberta"], "roberta", MORE)
    full = embedder(tiny_models["roberta"], cache=True)
    half = embedder(tiny_models["roberta"], cache=True, cache_float16=True)
    exact = full(ids, mask)
    full(ids, mask), half(ids, mask)
    approximate = half(ids, mask)  # from the float16 store
    assert approximate.dtype == torch.float32
    assert half.cache.memory_used * 2 == full.cache.memory_used
    torch.testing.assert_close(approximate[mask], exact[mask], atol=1e-2, rtol=1e-2)


def test_past_the_memory_budget_states_go_to_disk_and_survive_a_restart(tiny_models, tmp_path):
    ids, mask = tokenize(tiny_models["roberta"], "roberta", MORE)
    first = embedder(tiny_models["roberta"], cache=True, cache_memory_mb=0, cache_dir=str(tmp_path))
    expected = first(ids, mask)
    assert len(first.cache) == 0
    files = [f for _, _, names in os.walk(tmp_path) for f in names]
    assert len(files) == 4 and all(f.endswith(".pt") for f in files)
    restarted = embedder(tiny_models["roberta"], cache=True, cache_memory_mb=0, cache_dir=str(tmp_path))
    rows = count_stack_rows(restarted)
    torch.testing.assert_close(restarted(ids, mask)[mask], expected[mask])
    assert rows == [] and restarted.cache.hits == 4


def test_a_full_cache_without_directory_still_computes(tiny_models, caplog):
    ids, mask = tokenize(tiny_models["roberta"], "roberta", MORE)
    bounded = embedder(tiny_models["roberta"], cache=True, cache_memory_mb=0)
    rows = count_stack_rows(bounded)
    bounded(ids, mask), bounded(ids, mask)
    assert rows == [4, 4] and "cache is full" in caplog.text


def test_changed_text_model_or_prompt_layer_never_reuses_an_entry(tiny_models, tmp_path):
    ids, mask = tokenize(tiny_models["roberta"], "roberta", MORE)
    shared = dict(cache=True, cache_memory_mb=0, cache_dir=str(tmp_path))
    base = embedder(tiny_models["roberta"], **shared)
    base(ids, mask)
    changed = ids.clone()
    changed[0, 2] = (changed[0, 2] + 1) % 50 + 5
    base(changed, mask)
    assert base.cache.misses == 5  # only the changed example missed
    other_layer = embedder(tiny_models["roberta"], prompt_layer=3, **shared)
    other_layer(ids, mask)
    assert other_layer.cache.hits == 0
    other_model = embedder(tiny_models["bert"], **shared)
    bert_ids, bert_mask = tokenize(tiny_models["bert"], "bert", MORE)
    other_model(bert_ids, bert_mask)
    assert other_model.cache.hits == 0
    assert len(os.listdir(tmp_path)) == 3  # one namespace each


def _train(tiny_models, tmp_path, name, cache):
    config_path = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="roberta", epochs=3)
    config = json.load(open(config_path))
    lower = config["model"]["text_field_embedder"]["token_embedders"]["tokens"]
    lower.update({"cache": True} if cache else {"lower_dropout": False})
    config["trainer"]["num_gradient_accumulation_steps"] = 2
    config["data_loader"] = {"batch_size": 3, "shuffle": True}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    train_model_from_file(str(path), str(tmp_path / name))
    return json.loads((tmp_path / name / "metrics.json").read_text())


def test_training_with_the_cache_equals_training_with_eval_mode_lower_layers(tiny_models, tmp_path):
    """Shuffled batches, three epochs, gradient accumulation: the same run, with and without."""
    cached = _train(tiny_models, tmp_path, "cached", cache=True)
    plain = _train(tiny_models, tmp_path, "plain", cache=False)
    for key in ("training_loss", "validation_loss", "validation_accuracy"):
        assert cached[key] == pytest.approx(plain[key], rel=1e-4, abs=1e-5), key


def test_a_shared_cache_dir_keeps_mixed_precision_and_fp32_states_apart(tiny_models, tmp_path):
    """States computed under autocast (bf16 here; fp16 with AMP on a GPU) are not what an fp32
    run computes: a cache_dir shared by both runs must give each its own."""
    ids, mask = tokenize(tiny_models["roberta"], "roberta", MORE)
    settings = dict(cache=True, cache_memory_mb=0, cache_dir=str(tmp_path))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        embedder(tiny_models["roberta"], **settings)(ids, mask)  # fills the directory
    fp32 = embedder(tiny_models["roberta"], **settings)
    expected = embedder(tiny_models["roberta"]).eval()(ids, mask)
    torch.testing.assert_close(fp32(ids, mask)[mask], expected[mask], atol=1e-6, rtol=1e-6)
    assert fp32.cache.hits == 0
    namespaces = os.listdir(tmp_path)
    assert len(namespaces) == 2, namespaces


class Payload:
    """An arbitrary object: pickled into a cache file, weights-only loading must refuse it."""


def _damage(path, how):
    if how == "garbage":
        path.write_bytes(b"\x00\x01 not a torch file")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    elif how == "wrong shape":
        from allennlp_lpt.core.cache import _digest

        states = torch.zeros(3, 7)
        torch.save({"states": states, "sha1": _digest(states)}, path)
    elif how == "wrong digest":
        entry = torch.load(path, weights_only=True)
        torch.save({"states": entry["states"] + 1, "sha1": entry["sha1"]}, path)
    elif how == "pickle payload":
        torch.save({"states": Payload(), "sha1": "x"}, path)


@pytest.mark.parametrize("how", ["garbage", "truncated", "wrong shape", "wrong digest", "pickle payload"])
def test_a_damaged_disk_entry_is_recomputed_with_one_warning_naming_it(tiny_models, tmp_path, caplog, how):
    ids, mask = tokenize(tiny_models["roberta"], "roberta", MORE)
    settings = dict(cache=True, cache_memory_mb=0, cache_dir=str(tmp_path))
    expected = embedder(tiny_models["roberta"], **settings)(ids, mask)
    files = sorted(os.path.join(folder, name) for folder, _, names in os.walk(tmp_path) for name in names)
    damaged = files[0]
    _damage(__import__("pathlib").Path(damaged), how)
    restarted = embedder(tiny_models["roberta"], **settings)
    rows = count_stack_rows(restarted)
    with caplog.at_level("WARNING"):
        got = restarted(ids, mask)
    torch.testing.assert_close(got[mask], expected[mask])
    assert rows == [1]  # only the damaged entry's example ran the lower layers
    warnings = [r for r in caplog.records if "is not used" in r.getMessage()]
    assert len(warnings) == 1 and damaged in warnings[0].getMessage()
    # Recomputed and stored again: the next read is a clean hit.
    caplog.clear()
    again = embedder(tiny_models["roberta"], **settings)
    torch.testing.assert_close(again(ids, mask)[mask], expected[mask])
    assert again.cache.hits == 4 and "is not used" not in caplog.text


def test_loading_a_state_dict_invalidates_the_cached_states(tiny_models):
    """Weights loaded after the first cached batch (an archive, a checkpoint) are the ones the
    next batch is computed with: nothing stored under the old weights is read again."""
    ids, mask = tokenize(tiny_models["roberta"], "roberta", MORE)
    cached = embedder(tiny_models["roberta"], cache=True)
    before = cached(ids, mask)
    state = cached.state_dict()
    changed = next(key for key in state if key.endswith("layers.0.output.dense.weight"))
    # Not a constant shift: the LayerNorm after this projection would remove that.
    state[changed] = state[changed] + 0.05 * torch.randn(state[changed].shape, generator=torch.Generator().manual_seed(0))
    cached.load_state_dict(state)
    reference = embedder(tiny_models["roberta"]).eval()
    reference.load_state_dict(state)
    expected = reference(ids, mask)
    got = cached(ids, mask)
    assert not torch.allclose(expected[mask], before[mask], atol=1e-3)
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-5, rtol=1e-5)
    assert cached.cache.hits == 0  # computed again under the loaded weights


class Reads(TorchFunctionMode):
    """Counts the reads back to the host under it; a meta tensor read back gives zeros (what a
    device tensor's copy would be, without a device)."""

    def __init__(self):
        super().__init__()
        self.reads = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("cpu", "item", "tolist", "__float__", "__int__", "__bool__") or (
            name == "to" and any(str(a) == "cpu" for a in list(args[1:]) + list((kwargs or {}).values()))
        ):
            self.reads.append(name)
            if name == "cpu" and args[0].device.type == "meta":
                return torch.zeros(args[0].shape, dtype=args[0].dtype)
        return func(*args, **(kwargs or {}))


def test_the_weights_fingerprint_reads_a_device_back_in_few_copies_and_sees_any_change(tiny_models):
    """On the CPU nothing is copied; on another device one copy per chunk, not one per tensor
    (on a GPU: one wait each)."""
    from allennlp_lpt.core import LowerStack
    from allennlp_lpt.core.cache import weights_fingerprint

    stack = LowerStack(tiny_models["roberta"], 3)
    with Reads() as mode:
        first = weights_fingerprint(stack)
    assert mode.reads == [] and len(list(stack.parameters())) > 20
    on_device = LowerStack(tiny_models["roberta"], 3).to("meta")
    with Reads() as mode:
        weights_fingerprint(on_device)
    assert mode.reads == ["cpu"]
    total = sum(t.numel() * t.element_size() for t in list(on_device.parameters()) + list(on_device.buffers()))
    with Reads() as mode:
        weights_fingerprint(on_device, chunk_bytes=total // 3)
    assert 3 <= len(mode.reads) <= 6
    own = copy_of(stack)
    with torch.no_grad():
        next(p for name, p in own.named_parameters() if name.endswith("intermediate.dense.weight"))[3, 5] += 1e-3
    assert weights_fingerprint(own) != first == weights_fingerprint(copy_of(stack))


def copy_of(module):
    import copy

    return copy.deepcopy(module)


def test_float16_storage_rounds_every_row_alike_and_keeps_the_computed_dtype(tiny_models):
    """A budget that holds about half the batch: the rows stored and the rows past it come back
    rounded the same way, in the dtype the uncached path returns, in every epoch."""
    ids, mask = tokenize(tiny_models["roberta"], "roberta", MORE)
    exact = embedder(tiny_models["roberta"]).eval()(ids, mask)
    half = embedder(tiny_models["roberta"], cache=True, cache_float16=True,
                    cache_memory_mb=int(mask.sum()) * 32 * 2 / 2 / 2**20)
    for epoch in range(2):
        got = half(ids, mask)
        assert got.dtype == exact.dtype
        torch.testing.assert_close(got[mask], exact[mask].half().to(exact.dtype), atol=0, rtol=0)
    assert 0 < len(half.cache) < len(MORE)


def test_batches_come_back_in_the_dtype_the_layers_computed_whatever_the_storage():
    """Under autocast the lower layers may compute in 16 bits (on a GPU); float16 storage must
    then give back what the uncached path gives: here bfloat16 states, in both epochs."""
    from allennlp_lpt.core.cache import LowerStateCache

    states = torch.randn(3, 5, 8).to(torch.bfloat16)
    cache = LowerStateCache("test", dtype=torch.float16)
    for epoch in range(2):
        got = cache.batch_states(["a", "b", "c"], [5, 3, 4], 5, compute=lambda rows: states[rows],
                                 device=torch.device("cpu"), hidden_size=8)
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got[0], states[0].half().to(torch.bfloat16), atol=0, rtol=0)
    assert cache.hits == 3 and cache.misses == 3


def test_a_weight_change_that_sampled_values_and_sums_miss_is_never_served_stale(tiny_models, tmp_path):
    """Two weights of one matrix moved by +d and -d, between the values a sample of 64 would
    read, leave each parameter's float32 sum as it was; the states change, so an entry stored
    under the original weights must not be read for them."""
    ids, mask = tokenize(tiny_models["roberta"], "roberta", MORE)
    settings = dict(cache=True, cache_memory_mb=0, cache_dir=str(tmp_path))
    original = embedder(tiny_models["roberta"], **settings)
    before = original(ids, mask)  # fills the directory
    state = original.state_dict()
    key = next(key for key in state if key.endswith("embeddings.word_embeddings.weight"))
    weight = state[key]
    stride = weight.numel() // 64  # what a sample of 64 values would read: multiples of this
    changed = None
    for delta in (0.5, 0.25, 0.125):
        candidate = weight.clone().reshape(-1)
        row = int(ids[0, 1]) * weight.size(1)  # a token of the batch, so its states change
        first, second = row + 1, row + 3
        assert first % stride and second % stride
        candidate[first] += delta
        candidate[second] -= delta
        candidate = candidate.view_as(weight)
        if candidate.sum(dtype=torch.float32) == weight.sum(dtype=torch.float32):
            changed = candidate
            break
    assert changed is not None, "no change found that keeps the float32 sum"
    state[key] = changed
    other = embedder(tiny_models["roberta"], **settings)
    other.load_state_dict(state)
    reference = embedder(tiny_models["roberta"]).eval()
    reference.load_state_dict(state)
    expected = reference(ids, mask)
    assert not torch.allclose(expected[mask], before[mask], atol=1e-3)
    got = other(ids, mask)
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-6, rtol=1e-6)
    assert other.cache.hits == 0
    assert len(os.listdir(tmp_path)) == 2  # a namespace each


def test_cache_float16_stores_a_bfloat16_backbones_states_in_bfloat16(tiny_models):
    """States past float16's range (65504) come back finite, exactly as the bf16 layers
    computed them, in both epochs."""
    ids, mask = tokenize(tiny_models["roberta"], "roberta", MORE)
    settings = dict(prompt_layer=0, backbone_dtype="bfloat16")
    cached = embedder(tiny_models["roberta"], cache=True, cache_float16=True, **settings)
    reference = embedder(tiny_models["roberta"], **settings).eval()
    state = cached.state_dict()
    key = next(key for key in state if key.endswith("embeddings.LayerNorm.weight"))
    state[key] = torch.full_like(state[key], 3e5)  # the embeddings' output, scaled past 65504
    cached.load_state_dict(state)
    reference.load_state_dict(state)
    expected = reference(ids, mask)
    assert expected.dtype == torch.bfloat16 and expected[mask].abs().max() > 65504
    for epoch in range(2):
        got = cached(ids, mask)
        assert got.dtype == torch.bfloat16 and torch.isfinite(got).all()
        torch.testing.assert_close(got[mask], expected[mask], atol=0, rtol=0)
    assert cached.cache.dtype == torch.bfloat16 and cached.cache.hits == len(MORE)
    # float16 storage of a float32 backbone, as before: half the bytes of its states.
    assert embedder(tiny_models["roberta"], cache=True, cache_float16=True).cache.dtype == torch.float16
