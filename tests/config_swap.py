"""
allennlp-models' pattern for testing shipped configs: load the real config, then swap in a tiny
model of the same family, fixture data and a short schedule.
"""
import json
import os
from typing import Any, Dict, Optional

from allennlp.common import Params

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
ROOT = os.path.dirname(os.path.dirname(__file__))
CONFIGS = os.path.join(ROOT, "training_configs")


def task_fixture(task: str) -> str:
    return os.path.join(FIXTURES, "tasks", f"{task}.tsv")


def family_of(model_name: str) -> str:
    name = model_name.lower()
    if "gpt2" in name:
        return "gpt2"
    if "roberta" in name:
        return "roberta"
    for causal in ("llama", "mistral", "qwen2"):
        if causal in name:
            return causal
    return "bert"


def swap(config: Any, tiny_models: Dict[str, str], family: Optional[str]) -> Any:
    if isinstance(config, dict):
        swapped = {key: swap(value, tiny_models, family) for key, value in config.items()}
        if isinstance(config.get("model_name"), str):
            swapped["model_name"] = tiny_models[family or family_of(config["model_name"])]
        if isinstance(config.get("embedding_dim"), int):
            swapped["embedding_dim"] = 32  # the tiny models' hidden size
        if isinstance(config.get("max_length"), int):
            swapped["max_length"] = min(config["max_length"], 128)  # the tiny models' positions
        if isinstance(config.get("prompt_layer"), int) and config["prompt_layer"] > 0:
            swapped["prompt_layer"] = min(config["prompt_layer"], 2)  # tiny models have 4 layers
        causal_encoder = {"gpt2": "late_prompt_gpt2", "llama": "late_prompt_causal",
                          "qwen3": "late_prompt_causal"}.get(family or "")
        if causal_encoder and config.get("type") in ("late_prompt_roberta", "late_prompt_gpt2"):
            swapped["type"] = causal_encoder
            swapped.pop("pooling", None)
        return swapped
    if isinstance(config, list):
        return [swap(value, tiny_models, family) for value in config]
    return config


def tiny_config(
    config_path: str,
    tiny_models: Dict[str, str],
    out_dir: str,
    *,
    family: Optional[str] = None,
    data: Optional[str] = None,
    epochs: int = 2,
) -> str:
    """Writes the swapped config as JSON into `out_dir` and returns its path."""
    config = Params.from_file(config_path).as_dict(quiet=True)
    config = swap(config, tiny_models, family)
    task = config["dataset_reader"].get("task")
    if data is None:
        data = task_fixture(task) if task else os.path.join(FIXTURES, "sst2_tiny.tsv")
    config["train_data_path"] = data
    config["validation_data_path"] = data
    if "test_data_path" in config:
        config["test_data_path"] = data
    config["trainer"]["num_epochs"] = epochs
    config["trainer"]["cuda_device"] = -1
    # Plain batches: ModelTestCase compares batches read twice, which a bucket sampler shuffles.
    config["data_loader"] = {"batch_size": 4, "shuffle": True}
    config["trainer"]["num_gradient_accumulation_steps"] = 1
    config.pop("validation_data_loader", None)
    path = os.path.join(out_dir, os.path.basename(config_path).replace(".jsonnet", ".json"))
    with open(path, "w") as handle:
        json.dump(config, handle, indent=2)
    return path
