import csv
import json
import os

import pytest

from allennlp_lpt.sweep import parse_grid, sweep
from allennlp.common.checks import ConfigurationError
from config_swap import CONFIGS, tiny_config


def test_a_sweep_over_the_prompt_layer_and_seeds(tiny_models, tmp_path, capsys):
    config = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="roberta", epochs=1)
    out = tmp_path / "sweep"
    grid = parse_grid('{"*.prompt_layer": [1, 2, 9]}')  # 9: out of range, so that run fails
    rows = sweep(config, grid, str(out), seeds=[1, 2], fixed={"trainer.num_epochs": 1})
    assert len(rows) == 4
    captured = capsys.readouterr()
    assert "run prompt_layer=9_seed=1 failed" in captured.out + captured.err
    assert os.path.isfile(out / "logs" / "prompt_layer=9_seed=1.log")
    with open(out / "results.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["run"] for r in table] == ["prompt_layer=1_seed=1", "prompt_layer=1_seed=2",
                                         "prompt_layer=2_seed=1", "prompt_layer=2_seed=2"]
    assert all(0 <= float(r["best_dev_accuracy"]) <= 1 and float(r["training_seconds"]) > 0 for r in table)
    saved = json.loads((out / "prompt_layer=2_seed=1" / "config.json").read_text())
    lower = saved["model"]["text_field_embedder"]["token_embedders"]["tokens"]
    assert lower["prompt_layer"] == 2 and saved["model"]["seq2vec_encoder"]["prompt_layer"] == 2
    assert saved["random_seed"] == saved["numpy_seed"] == saved["pytorch_seed"] == 1
    summary = (out / "results.md").read_text().splitlines()
    assert len(summary) == 4 and summary[2].startswith("| 1 | ") and summary[2].endswith("| 2 |")
    assert (out / "plot.png").read_bytes()[:4] == b"\x89PNG"
    # Started again, finished runs are skipped (their metrics are not rewritten).
    before = os.path.getmtime(out / "prompt_layer=1_seed=1" / "metrics.json")
    sweep(config, grid, str(out), seeds=[1, 2], fixed={"trainer.num_epochs": 1})
    assert os.path.getmtime(out / "prompt_layer=1_seed=1" / "metrics.json") == before


def test_bad_grids():
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        parse_grid("{prompt_layer: [1]}")
    with pytest.raises(ConfigurationError, match="non-empty list"):
        parse_grid('{"a.b": 3}')
