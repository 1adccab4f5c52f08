"""`allennlp lpt-aggregate`: mean ± std of each experiment over its seeds, from serialization
directories."""
import json
import os
import re
from collections import defaultdict
from typing import Any, Dict, Iterator, List, Optional, Tuple

from allennlp_lpt.experiments.configs import DATA_SEED_FOLDER, first, flatten, short_names
from allennlp_lpt.experiments.tables import PERCENT_NOTE, label_count, markdown_table, metric_cell


FEW_SHOT_PATH = re.compile(r"(?:^|/)([^/]+)/(\d+)-(\d+)/[^/]+$")


def find_runs(paths: List[str]) -> Iterator[str]:
    """Serialization directories (holding config.json and metrics.json) at or under `paths`."""
    for path in paths:
        for folder, _, files in sorted(os.walk(path)):
            if "config.json" in files and "metrics.json" in files:
                yield folder


def describe_run(folder: str) -> Tuple[Tuple[str, str, str], str, float, Dict[str, Any]]:
    """((task, model, setting), metric name, value, saved config) of one run."""
    key, label, value, config, _ = describe_run_with_macro_f1(folder)
    return key, label, value, config


def describe_run_with_macro_f1(
    folder: str,
) -> Tuple[Tuple[str, str, str], str, float, Dict[str, Any], Optional[float]]:
    """`describe_run`, and the run's macro-F1 on the same set where it has more than two labels
    (else None)."""
    with open(os.path.join(folder, "config.json")) as handle:
        config = json.load(handle)
    with open(os.path.join(folder, "metrics.json")) as handle:
        metrics = json.load(handle)
    train_path = str(config.get("train_data_path", ""))
    few_shot = FEW_SHOT_PATH.search(train_path)
    task = first(config.get("dataset_reader", {}), "task")
    if task is None:
        task = few_shot.group(1) if few_shot else os.path.basename(os.path.dirname(train_path)) or "-"
    model = os.path.basename(str(first(config.get("model", {}), "model_name") or "-").rstrip("/"))
    setting = f"few-shot k={few_shot.group(2)}" if few_shot else "full data"
    for prefix in ("test_", "best_validation_"):
        for name in ("acc_and_f1", "accuracy"):
            if prefix + name in metrics:
                value = float(metrics[prefix + name])
                label = f"{'test' if prefix == 'test_' else 'best dev'} {name}"
                macro = metrics.get(prefix + "macro_f1") if label_count(metrics) > 2 else None
                mismatched = os.path.join(folder, "metrics_mismatched.json")
                if str(task).lower() == "mnli" and prefix == "test_" and os.path.isfile(mismatched):
                    with open(mismatched) as handle:
                        other = float(json.load(handle)["accuracy"])
                    return (task, model, setting), "test accuracy (m + mm) / 2", (value + other) / 2, config, None
                return (task, model, setting), label, value, config, macro
    raise ValueError(f"{folder}/metrics.json has no test_ or best_validation_ accuracy")


SEED_KEYS = {"random_seed", "numpy_seed", "pytorch_seed"}


def seedless(config: Dict[str, Any]) -> Dict[str, str]:
    """A run's flattened config without what only its seeds decide: the training seeds, and the
    data seed in few-shot data paths (`.../16-13/train.tsv` -> `.../16-*/train.tsv`)."""
    flat = flatten(config)
    return {
        key: DATA_SEED_FOLDER.sub(lambda match: match.group(1) + "-*", value)
        for key, value in flat.items()
        if key.rsplit(".", 1)[-1] not in SEED_KEYS
    }


def varying_columns(configs: List[Dict[str, str]]) -> List[List[str]]:
    """The keys whose values differ between runs, those that always vary together in one
    column (e.g. the embedder's and the encoder's prompt_layer)."""
    keys = sorted({key for config in configs for key in config})
    varying = [key for key in keys if len({config.get(key) for config in configs}) > 1]
    columns: Dict[Tuple, List[str]] = {}
    for key in varying:
        pattern = tuple(config.get(key) for config in configs)
        columns.setdefault(pattern, []).append(key)
    return list(columns.values())


def _column_names(columns: List[List[str]]) -> List[str]:
    """A short name per column: the keys' common last part where no other column's key ends
    with it (`prompt_layer` for the embedder's and the encoder's), else the shortest suffix that
    tells the first key from every other (`+N` counts the other keys of the column)."""
    every = [key for keys in columns for key in keys]
    shortest = short_names(every)
    names = []
    for keys in columns:
        last = {key.rsplit(".", 1)[-1] for key in keys}
        outside = [key for key in every if key not in keys]
        if len(last) == 1 and not any(key.rsplit(".", 1)[-1] in last for key in outside):
            names.append(last.pop())
        else:
            names.append(shortest[keys[0]] + (f" (+{len(keys) - 1})" if len(keys) > 1 else ""))
    return names


def aggregate(paths: List[str]) -> str:
    """
    A markdown table, one row per experiment: task, model, setting, then every config key that
    differs between the runs (seeds aside), the metric, mean ± std over the runs and their
    number. Runs are grouped by everything in their saved configs except the seeds, so runs of
    different prompt layers or generators are never averaged together.
    """
    runs = []
    macro_f1: List[Optional[float]] = []  # beside `runs`, one per run
    for folder in find_runs(paths):
        key, metric, value, config, macro = describe_run_with_macro_f1(folder)
        runs.append((key, metric, value, seedless(config)))
        macro_f1.append(macro)
    if not runs:
        raise ValueError(f"no serialization directory (config.json + metrics.json) under {paths}")
    columns = varying_columns([config for *_, config in runs])

    def cell(config: Dict[str, str], keys: List[str]) -> str:
        return " / ".join(sorted({config.get(k, "-") for k in keys}))

    # A column that task, model and setting already determine (the data paths, model_name)
    # tells no rows apart: it groups, but is not shown.
    shown = [
        keys for keys in columns
        if len({key for key, *_ in runs}) < len({(key, cell(config, keys)) for key, _, _, config in runs})
    ]
    groups: Dict[Tuple, List[Tuple[float, Optional[float]]]] = defaultdict(list)
    for (key, metric, value, config), macro in zip(runs, macro_f1):
        hidden = tuple(cell(config, keys) for keys in columns if keys not in shown)
        varied = tuple(cell(config, keys) for keys in shown)
        groups[key + varied + (metric,) + hidden].append((value, macro))
    names = _column_names(shown)
    width = 3 + len(shown) + 1  # the hidden cells at the end of the group key are not shown
    with_macro = any(macro is not None for macro in macro_f1)
    table = markdown_table(
        ["task", "model", "setting", *names, "metric", "mean ± std (%)", *(["macro-F1 (%)"] if with_macro else []),
         "runs"],
        [[*row[:width], metric_cell([value for value, _ in pairs], "accuracy"),
          *([metric_cell([macro for _, macro in pairs], "macro_f1")] if with_macro else []), len(pairs)]
         for row, pairs in sorted(groups.items())],
    )
    return f"{PERCENT_NOTE}\n\n{table}"
