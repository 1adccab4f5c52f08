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


# One case per loading path: a few-shot recipe (epochs cut across the shuffles by
# batches_per_epoch) killed in its last epoch, and the causal verbalizer killed in its second.
# The quickstart's path (bucket sampler, killed mid-epoch) is the test below.
@pytest.mark.parametrize("name,family,kill_epoch,kill_batch", [
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


def test_sigkill_mid_epoch_then_recover_matches_two_uninterrupted_runs_that_agree(tiny_models, tmp_path):
    """The quickstart with its own loaders, killed mid-epoch and recovered, ends with the metrics
    of an uninterrupted run; a second uninterrupted run with the same seeds gives the same ones;
    and everything a run saved loads with weights_only (the RNG callback's state included)."""
    marker = tmp_path / "killed"
    config = _shipped_loaders_config(tiny_models, tmp_path, marker, "quickstart.jsonnet", 1, 3)
    killed = _train(config, tmp_path / "interrupted")
    assert killed.returncode == -9 and marker.exists(), killed.stderr[-2000:]
    assert not (tmp_path / "interrupted" / "metrics.json").exists()
    recovered = _train(config, tmp_path / "interrupted", "--recover")
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    first, second = _train(config, tmp_path / "a"), _train(config, tmp_path / "b")  # the marker exists: no kill
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:]
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    assert _metrics(tmp_path / "interrupted") == _metrics(tmp_path / "a")
    # The best epoch's confusion matrix too, where that epoch came before the kill.
    assert (tmp_path / "interrupted" / "confusion_matrix.csv").read_text() == \
        (tmp_path / "a" / "confusion_matrix.csv").read_text()
    for path in glob.glob(str(tmp_path / "a" / "*.th")):
        state = torch.load(path, weights_only=True)
        if "callbacks" in state:
            assert any("torch" in callback for callback in state["callbacks"] if callback)
