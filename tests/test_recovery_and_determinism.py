"""A run killed mid-epoch (SIGKILL) and recovered ends where an uninterrupted run ends; two runs
with the same seeds agree; what a run saves loads with torch's weights_only loading."""
import glob
import json
import os
import subprocess
import sys

import pytest
import torch
from allennlp.common import Params

from config_swap import CONFIGS, ROOT, tiny_config

TESTS = os.path.dirname(__file__)


def _config(tiny_models, tmp_path, marker):
    path = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="roberta", epochs=3)
    config = json.load(open(path))
    config["data_loader"] = {"batch_size": 2, "shuffle": True}  # 6 batches an epoch, reshuffled
    config["validation_data_loader"] = {"batch_size": 4, "shuffle": False}
    config["trainer"]["callbacks"].append({"type": "test_kill_once", "marker": str(marker), "epoch": 1, "batch": 3})
    out = tmp_path / "config.json"
    out.write_text(json.dumps(config))
    return str(out)


def _shipped_loaders_config(tiny_models, tmp_path, marker, name, kill_epoch, kill_batch, family="roberta"):
    """A shipped config with its own data loaders (bucket sampler, shuffled training batches,
    unshuffled validation), only smaller batches so that an epoch has several."""
    path = tiny_config(os.path.join(CONFIGS, name), tiny_models, str(tmp_path), family=family, epochs=3)
    config = json.load(open(path))
    shipped = Params.from_file(os.path.join(CONFIGS, name)).as_dict(quiet=True)
    config["data_loader"] = shipped["data_loader"]
    config["data_loader"]["batch_sampler"]["batch_size"] = 2
    if "batches_per_epoch" in config["data_loader"]:  # few-shot: epochs cut across the shuffles
        config["data_loader"]["batches_per_epoch"] = 3
    config["validation_data_loader"] = shipped["validation_data_loader"]
    config["validation_data_loader"]["batch_sampler"]["batch_size"] = 4
    config["trainer"]["num_gradient_accumulation_steps"] = 1
    config["trainer"]["callbacks"].append(
        {"type": "test_kill_once", "marker": str(marker), "epoch": kill_epoch, "batch": kill_batch})
    out = tmp_path / "config.json"
    out.write_text(json.dumps(config))
    return str(out)


@pytest.mark.parametrize("name,family,kill_epoch,kill_batch", [
    ("quickstart.jsonnet", "roberta", 1, 3),   # mid-epoch: recovers from the end of epoch 0
    ("quickstart.jsonnet", "roberta", 2, 1),   # recovers from the end of epoch 1
    ("roberta-large/sst-2_full-data.jsonnet", "roberta", 1, 2),
    ("roberta-large/sst-2_few-shot.jsonnet", "roberta", 2, 2),
    ("gpt2-large/sst-2_full-data.jsonnet", "gpt2", 1, 1),
])
def test_a_shipped_config_with_its_bucket_sampler_recovers_exactly(tiny_models, tmp_path, name, family,
                                                                    kill_epoch, kill_batch):
    """The shipped configs' own loaders (bucket sampler, shuffled training, unshuffled but
    noise-drawing validation), killed with SIGKILL and recovered with --recover: every final
    metric equals the uninterrupted run's, the test metric of the best checkpoint included."""
    marker = tmp_path / "killed"
    config = _shipped_loaders_config(tiny_models, tmp_path, marker, name, kill_epoch, kill_batch, family)
    killed = _train(config, tmp_path / "interrupted")
    assert killed.returncode == -9 and marker.exists(), killed.stderr[-2000:]
    recovered = _train(config, tmp_path / "interrupted", "--recover")
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    straight = _train(config, tmp_path / "straight")  # the marker exists: no kill
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert _metrics(tmp_path / "interrupted") == _metrics(tmp_path / "straight")


def _train(config, directory, *extra):
    env = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "allennlp", "train", config, "-s", str(directory),
         "--include-package", "allennlp_lpt", "--include-package", "crash_callback", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def _metrics(directory):
    metrics = json.loads((directory / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if "duration" not in k and "memory" not in k and k != "epoch"}


def test_sigkill_mid_epoch_then_recover_matches_an_uninterrupted_run(tiny_models, tmp_path):
    marker = tmp_path / "killed"
    config = _config(tiny_models, tmp_path, marker)
    killed = _train(config, tmp_path / "interrupted")
    assert killed.returncode == -9 and marker.exists(), killed.stderr[-2000:]
    assert not (tmp_path / "interrupted" / "metrics.json").exists()
    recovered = _train(config, tmp_path / "interrupted", "--recover")
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    straight = _train(config, tmp_path / "straight")  # the marker exists: no kill
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert _metrics(tmp_path / "interrupted") == pytest.approx(_metrics(tmp_path / "straight"), rel=1e-6)


def test_two_runs_with_the_same_seeds_give_identical_metrics(tiny_models, tmp_path):
    marker = tmp_path / "never"
    marker.write_text("")
    config = _config(tiny_models, tmp_path, marker)
    first, second = _train(config, tmp_path / "a"), _train(config, tmp_path / "b")
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:]
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    # Everything the run saved loads without arbitrary pickling (our RNG callback included).
    for path in glob.glob(str(tmp_path / "a" / "*.th")):
        state = torch.load(path, weights_only=True)
        if "callbacks" in state:
            assert any("torch" in callback for callback in state["callbacks"] if callback)
