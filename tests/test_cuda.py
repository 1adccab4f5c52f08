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
