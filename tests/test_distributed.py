"""AllenNLP's own distributed training (DDP over gloo, two CPU workers) with the components."""
import json
import os
import subprocess
import sys

import pytest
import torch

from config_swap import CONFIGS, ROOT, tiny_config

TESTS = os.path.dirname(os.path.abspath(__file__))


def train_on_two_cpu_workers(config: dict, callback: dict, tmp_path, timeout: int = 600):
    """Trains `config` with AllenNLP's DDP over two CPU workers, the test callback `callback`
    (from tests/crash_callback.py) added; returns the run folder."""
    config["distributed"] = {"cuda_devices": [-1, -1]}
    # AllenNLP 2.10 runs the final test evaluation on the primary worker alone while its metrics
    # all-reduce across workers (a hang, whatever the model): evaluate the archive afterwards.
    config["evaluate_on_test"] = False
    config["data_loader"] = {"batch_size": 2, "shuffle": True}
    config["trainer"].setdefault("callbacks", []).append(callback)
    path = tmp_path / "distributed.json"
    path.write_text(json.dumps(config))
    run = tmp_path / "run"
    trained = subprocess.run(
        [sys.executable, "-m", "allennlp", "train", str(path), "-s", str(run), "--include-package", "allennlp_lpt",
         "--include-package", "crash_callback"],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", "")),
    )
    assert trained.returncode == 0, trained.stderr[-4000:]
    assert "World size: 2" in trained.stderr + trained.stdout
    return run


# One DDP path: the causal verbalizer (the most the workers share: the frozen LM head, scoring
# rows); the quickstart's basic_classifier path needs nothing more of DDP.
@pytest.mark.parametrize("config_name,family", [
    ("gpt2-large/sst-2_full-data.jsonnet", "gpt2"),
])
def test_two_cpu_workers_train_and_the_archive_evaluates(tiny_models, tmp_path, config_name, family):
    path = tiny_config(os.path.join(CONFIGS, config_name), tiny_models, str(tmp_path), family=family, epochs=2)
    config = json.load(open(path))
    weights = tmp_path / "weights"
    weights.mkdir()
    run = train_on_two_cpu_workers(config, {"type": "test_save_generator_per_worker", "folder": str(weights)}, tmp_path)
    # Both workers trained the same generator (DDP all-reduced the gradients), and it moved.
    start, end = ({rank: torch.load(weights / f"generator_{when}_rank{rank}.th") for rank in (0, 1)}
                  for when in ("start", "end"))
    assert start[0] and set(end[0]) == set(end[1]) == set(start[0])
    for name in end[0]:
        torch.testing.assert_close(end[0][name], end[1][name], atol=0, rtol=0)
    assert any(not torch.equal(end[0][name], start[0][name]) for name in end[0])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"] == 1
    data = config["validation_data_path"]
    evaluated = subprocess.run(
        [sys.executable, "-m", "allennlp", "evaluate", str(run / "model.tar.gz"), data,
         "--include-package", "allennlp_lpt", "--output-file", str(tmp_path / "dev.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    # The best epoch's validation counts, summed over both workers' shards, are those of the
    # archive (the best weights) evaluated in one process.
    assert (run / "confusion_matrix.csv").read_text() == (tmp_path / "dev_confusion_matrix.csv").read_text()


def test_workers_whose_clocks_disagree_stop_after_the_same_batch(tiny_models, tmp_path):
    # Rank 0 is past its budget at its first batch, rank 1 never is: each deciding alone, rank 1
    # would train on while rank 0 validates, and their collectives would no longer pair up.
    path = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="roberta",
                       epochs=3)
    config = json.load(open(path))
    run = train_on_two_cpu_workers(config, {"type": "test_time_budget_by_rank", "seconds": [1e-9, 1e9]}, tmp_path,
                                   timeout=300)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"] == 0 and metrics["stopped_by_time_budget"] is True
    # The epoch's validation counted the validation rows alone, over both workers' shards.
    rows = sum(1 for _ in open(config["validation_data_path"])) - 1
    counts = [line.split(",")[1:] for line in (run / "confusion_matrix.csv").read_text().splitlines()[1:]]
    assert sum(int(cell) for row in counts for cell in row) == rows
