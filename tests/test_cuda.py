"""
CUDA: `allennlp train` with `use_amp` (fp16 autocast + GradScaler) through every component path,
then the archive on CUDA against the same archive on the CPU, loaded in the same process (the
two share one backbone until the CUDA one is moved). Skipped where no GPU is visible;
`scripts/gpu_check.sh` runs them on a lent GPU machine.
"""
import glob
import json
import os

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common.testing import requires_gpu
from allennlp.data import Batch
from allennlp.models.archival import load_archive
from allennlp.nn.util import move_to_device

from config_swap import CONFIGS, FIXTURES, tiny_config

QUICKSTART = os.path.join(CONFIGS, "quickstart.jsonnet")
ROBERTA_VERBALIZER = os.path.join(CONFIGS, "roberta-large", "sst-2_full-data.jsonnet")
GPT2_SCORING = os.path.join(CONFIGS, "gpt2-large", "sst-2_full-data.jsonnet")

PATHS = [
    pytest.param(QUICKSTART, "bert", False, id="basic_classifier-bert"),
    pytest.param(QUICKSTART, "gpt2", False, id="basic_classifier-gpt2"),
    pytest.param(QUICKSTART, "roberta", True, id="basic_classifier-roberta-cached"),
    pytest.param(ROBERTA_VERBALIZER, "roberta", False, id="verbalizer-roberta"),
    pytest.param(GPT2_SCORING, "gpt2", True, id="scoring-gpt2-cached"),
    pytest.param(QUICKSTART, "llama", False, id="basic_classifier-llama"),
    pytest.param(GPT2_SCORING, "llama", False, id="scoring-llama"),
]


def train_with_amp(config: str, family: str, cached: bool, tiny_models, out_dir: str, *,
                   cuda_device: int = 0, use_amp: bool = True) -> str:
    """Trains the shipped config (tiny model swapped in) and returns its serialization dir."""
    param_file = tiny_config(config, tiny_models, out_dir, family=family, epochs=2)
    with open(param_file) as handle:
        params = json.load(handle)
    params["trainer"]["cuda_device"] = cuda_device
    params["trainer"]["use_amp"] = use_amp
    if cached:
        params["model"]["text_field_embedder"]["token_embedders"]["tokens"]["cache"] = True
    with open(param_file, "w") as handle:
        json.dump(params, handle)
    serialization_dir = os.path.join(out_dir, "run")
    train_model_from_file(param_file, serialization_dir)
    return serialization_dir


def check_amp_run(serialization_dir: str) -> None:
    """Finite metrics; fp32 trained weights and fp32 Adam moments in the last checkpoint."""
    with open(os.path.join(serialization_dir, "metrics.json")) as handle:
        metrics = json.load(handle)
    assert metrics["training_loss"] == metrics["training_loss"], metrics  # not NaN
    weights = torch.load(os.path.join(serialization_dir, "best.th"), map_location="cpu")
    generator = {name: value for name, value in weights.items() if "generator" in name}
    assert generator and all(value.dtype == torch.float32 for value in generator.values())
    assert all(bool(torch.isfinite(value).all()) for value in generator.values())
    states = sorted(glob.glob(os.path.join(serialization_dir, "training_state_e*.th")))
    assert states, os.listdir(serialization_dir)
    training_state = torch.load(states[-1], map_location="cpu", weights_only=False)
    moments = [
        tensor
        for state in training_state["optimizer"]["state"].values()
        for key, tensor in state.items()
        if key in ("exp_avg", "exp_avg_sq")
    ]
    assert moments and all(tensor.dtype == torch.float32 for tensor in moments)


def archive_logits(serialization_dir: str, cuda_device: int):
    """The archived model's logits for the fixture sentences, on the given device."""
    archive = load_archive(os.path.join(serialization_dir, "model.tar.gz"), cuda_device=cuda_device)
    reader, model = archive.dataset_reader, archive.model.eval()
    instances = list(reader.read(os.path.join(FIXTURES, "tasks", "sst-2.tsv")))[:8]
    for instance in instances:
        reader.apply_token_indexers(instance)
    batch = Batch(instances)
    batch.index_instances(model.vocab)
    tensors = move_to_device(batch.as_tensor_dict(), cuda_device)
    tensors.pop("label", None)
    with torch.no_grad():
        return model(**tensors)["logits"].float().cpu()


@requires_gpu
@pytest.mark.parametrize("config,family,cached", PATHS)
def test_use_amp_on_cuda_trains_and_the_archive_agrees_with_the_cpu(config, family, cached,
                                                                    tiny_models, tmp_path):
    serialization_dir = train_with_amp(config, family, cached, tiny_models, str(tmp_path))
    check_amp_run(serialization_dir)
    torch.testing.assert_close(archive_logits(serialization_dir, 0),
                               archive_logits(serialization_dir, -1), atol=1e-4, rtol=1e-4)


METHOD_PATHS = [
    pytest.param(os.path.join(CONFIGS, "methods", "quickstart_lora.jsonnet"), "bert", id="lora-bert"),
    pytest.param(os.path.join(CONFIGS, "methods", "quickstart_prefix_tuning.jsonnet"), "llama", id="prefix-llama"),
    pytest.param(os.path.join(CONFIGS, "methods", "quickstart_bitfit.jsonnet"), "roberta", id="bitfit-roberta"),
    pytest.param(os.path.join(CONFIGS, "roberta-large", "prompt_tuning", "sst-2_full-data.jsonnet"), "roberta",
                 id="prompt-tuning-verbalizer-roberta"),
    pytest.param(os.path.join(CONFIGS, "gpt2-large", "ia3", "sst-2_full-data.jsonnet"), "gpt2", id="ia3-scoring-gpt2"),
]


@requires_gpu
@pytest.mark.parametrize("config,family", METHOD_PATHS)
def test_the_other_methods_train_with_amp_on_cuda_and_their_archives_agree_with_the_cpu(config, family, tiny_models,
                                                                                       tmp_path):
    serialization_dir = train_with_amp(config, family, False, tiny_models, str(tmp_path))
    with open(os.path.join(serialization_dir, "metrics.json")) as handle:
        metrics = json.load(handle)
    assert metrics["training_loss"] == metrics["training_loss"], metrics  # not NaN
    trained = torch.load(os.path.join(serialization_dir, "best.th"), map_location="cpu")
    assert trained and all(bool(torch.isfinite(value).all()) for value in trained.values() if value.is_floating_point())
    torch.testing.assert_close(archive_logits(serialization_dir, 0),
                               archive_logits(serialization_dir, -1), atol=1e-4, rtol=1e-4)


@requires_gpu
def test_a_model_moved_to_cuda_leaves_another_model_of_the_same_backbone_on_the_cpu(tiny_models):
    """Two models share one backbone until one of them moves: the CUDA one gets its own copies,
    the CPU one keeps working on the shared weights, and both compute the same logits."""
    from models.test_late_prompt_classifier import TEXTS, build, tensors

    torch.manual_seed(0)
    reader, vocab, on_cpu = build(tiny_models["roberta"], "roberta")
    torch.manual_seed(0)
    _, _, on_cuda = build(tiny_models["roberta"], "roberta")
    on_cuda.cuda()
    assert all(p.device.type == "cpu" for p in on_cpu.parameters())
    batch = tensors(reader, vocab, TEXTS)
    on_cpu.eval(), on_cuda.eval()
    with torch.no_grad():
        expected = on_cpu(**batch)["logits"]
        got = on_cuda(**move_to_device(batch, 0))["logits"].cpu()
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def _keyed_cached_classifier(tiny_models, family):
    from modules.test_cache_keys import keyed_cached_classifier

    model, tensors = keyed_cached_classifier(tiny_models, family)
    return model.cuda().train(), move_to_device({"tokens": tensors}, 0)


@requires_gpu
@pytest.mark.parametrize("family", ["roberta", "gpt2"])
def test_a_cached_training_step_on_cuda_never_waits_for_the_gpu(tiny_models, family):
    """With the reader's keys, the second epoch's forward and backward (cache hits, prompt,
    upper layers, head, the deferred batch checks) run under `set_sync_debug_mode("error")`,
    which raises at anything that makes the host wait for the GPU."""
    model, tokens = _keyed_cached_classifier(tiny_models, family)
    labels = torch.zeros(tokens["tokens"]["token_ids"].size(0), dtype=torch.long, device="cuda")
    model(tokens=tokens)  # the first epoch: stores the states
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2):
            logits = model(tokens=tokens)["logits"]
            torch.nn.functional.cross_entropy(logits, labels).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    embedder = model._text_field_embedder.token_embedder_tokens
    assert embedder.cache.hits == 2 * labels.numel()


@requires_gpu
def test_on_cuda_a_left_padded_mask_raises_at_the_next_batch_without_waiting(tiny_models):
    model, tokens = _keyed_cached_classifier(tiny_models, "roberta")
    encoder = model._seq2vec_encoder
    field = tokens["tokens"]
    model(tokens=tokens)  # the first batch (the pairing was checked when the model was built)
    states = model._text_field_embedder(tokens)
    left = field["mask"].flip(1)  # real tokens last
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        encoder(states, field["mask"])
        encoder(states, left)  # the verdict is on its way back
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    with pytest.raises(ValueError, match=r"not right-padded.*Batch 3 this component received"):
        encoder(states, field["mask"])


@requires_gpu
def test_the_pinned_host_tier_reads_back_exactly_on_cuda(tiny_models):
    from modules.test_cache_keys import read
    from modules.test_lower_state_cache import MORE, count_stack_rows, embedder

    _, tensors = read(tiny_models["roberta"], MORE)
    tensors = move_to_device(tensors, 0)
    plain = {name: value for name, value in tensors.items() if name != "row_keys"}
    expected = embedder(tiny_models["roberta"]).cuda().eval()(**plain)
    cached = embedder(tiny_models["roberta"], cache=True, cache_memory_mb=0, cache_host_memory_mb=16).cuda()
    rows = count_stack_rows(cached)
    cached(**tensors)
    got = cached(**tensors)
    assert rows == [len(MORE)] and len(cached.cache) == len(MORE)
    assert cached.cache.host_used > 0 and cached.cache.memory_used == 0
    mask = tensors["mask"]
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-5, rtol=1e-5)


@requires_gpu
def test_multi_task_prediction_on_cuda_holds_one_backbone_copy(tiny_models, tmp_path):
    """The archives are moved in one call: the shared frozen weights become one CUDA copy, and
    every task's output equals its own predictor's on the CPU."""
    from allennlp.predictors import Predictor

    from allennlp_lpt.predictors import MultiTaskPredictor

    archives = []
    for seed in (1, 2):
        out = tmp_path / f"task{seed}"
        out.mkdir()
        config = tiny_config(QUICKSTART, tiny_models, str(out), family="roberta", epochs=1)
        params = json.load(open(config))
        params["random_seed"] = params["pytorch_seed"] = seed
        json.dump(params, open(config, "w"))
        train_model_from_file(config, str(out / "run"))
        archives.append(str(out / "run" / "model.tar.gz"))
    multi = MultiTaskPredictor.from_archives(archives, names=["a", "b"], cuda_device=0)
    embeddings = [task.embedder.stack.embeddings.word_embeddings.weight for task in multi.tasks]
    assert all(weight.is_cuda for weight in embeddings)
    assert embeddings[0].data_ptr() == embeddings[1].data_ptr()
    inputs = [{"sentence": "a warm and funny film ."}, {"sentence": "the plot was boring and long"}]
    outputs = multi.predict_batch_json(inputs)
    for name, archive in zip(["a", "b"], archives):
        cpu = Predictor.from_archive(load_archive(archive), "lpt_classifier").predict_batch_json(inputs)
        for ours, theirs in zip(outputs, cpu):
            torch.testing.assert_close(torch.tensor(ours[name]["logits"]), torch.tensor(theirs["logits"]),
                                       atol=1e-5, rtol=1e-4)


@requires_gpu
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_shared_context_scoring_on_cuda_equals_one_row_per_candidate(tiny_models, family):
    from allennlp.common import Params
    from allennlp.data import DatasetReader, Vocabulary
    from allennlp.models import Model

    model_dir = tiny_models[family]
    reader = DatasetReader.from_params(Params({"type": "lpt_tsv", "model_name": model_dir,
                                               "template": "{s} It was"}))
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["0", "1"], namespace="labels")
    shared = {"model_name": model_dir, "prompt_layer": 2}
    model = Model.from_params(vocab=vocab, params=Params({
        "type": "late_prompt_classifier",
        "text_field_embedder": {"token_embedders": {"tokens": {"type": "late_prompt_transformer", **shared}}},
        "encoder": {"type": "late_prompt_causal", **shared, "generator": {"type": "mppg"}},
        "label_words": {"0": "terrible", "1": "very good fun"},
    })).cuda().eval()
    instances = [reader.text_to_instance(t) for t in ("the movie was great fun", "a boring film , not good")]
    for instance in instances:
        reader.apply_token_indexers(instance)
    batch = Batch(instances)
    batch.index_instances(vocab)
    tokens = move_to_device(batch.as_tensor_dict(), 0)["tokens"]
    with torch.no_grad():
        shared_scores = model._answer_nll_shared(tokens)
        per_row = model._answer_nll(tokens, model._answer_ids[None].expand(2, -1, -1),
                                    model._answer_lengths[None].expand(2, -1))
    torch.testing.assert_close(shared_scores, per_row, atol=1e-4, rtol=1e-4)
