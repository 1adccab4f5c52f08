"""AllenNLP's own distributed training (DDP over gloo, two CPU workers) with the components."""
import json
import os
import subprocess
import sys

import pytest

from config_swap import CONFIGS, FIXTURES, ROOT, tiny_config


@pytest.mark.parametrize("config_name,family", [
    ("quickstart.jsonnet", "roberta"),
    ("gpt2-large/sst-2_full-data.jsonnet", "gpt2"),
])
def test_two_cpu_workers_train_and_the_archive_evaluates(tiny_models, tmp_path, config_name, family):
    path = tiny_config(os.path.join(CONFIGS, config_name), tiny_models, str(tmp_path), family=family, epochs=2)
    config = json.load(open(path))
    config["distributed"] = {"cuda_devices": [-1, -1]}
    # AllenNLP 2.10 runs the final test evaluation on the primary worker alone while its metrics
    # all-reduce across workers (a hang, whatever the model): evaluate the archive afterwards.
    config["evaluate_on_test"] = False
    config["data_loader"] = {"batch_size": 2, "shuffle": True}
    path = tmp_path / "distributed.json"
    path.write_text(json.dumps(config))
    run = tmp_path / "run"
    trained = subprocess.run(
        [sys.executable, "-m", "allennlp", "train", str(path), "-s", str(run), "--include-package", "allennlp_lpt"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-4000:]
    assert "World size: 2" in trained.stderr + trained.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"] == 1
    data = config["validation_data_path"]
    evaluated = subprocess.run(
        [sys.executable, "-m", "allennlp", "evaluate", str(run / "model.tar.gz"), data,
         "--include-package", "allennlp_lpt"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
