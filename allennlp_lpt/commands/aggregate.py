import argparse
import json
import os
import re
import statistics
from collections import defaultdict
from typing import Any, Dict, Iterator, List, Optional, Tuple

from allennlp.commands.subcommand import Subcommand

FEW_SHOT_PATH = re.compile(r"(?:^|/)([^/]+)/(\d+)-(\d+)/[^/]+$")


def find_runs(paths: List[str]) -> Iterator[str]:
    """Serialization directories (holding config.json and metrics.json) at or under `paths`."""
    for path in paths:
        for folder, _, files in sorted(os.walk(path)):
            if "config.json" in files and "metrics.json" in files:
                yield folder


def _first(config: Any, key: str) -> Optional[Any]:
    if isinstance(config, dict):
        if key in config:
            return config[key]
        values = (_first(value, key) for value in config.values())
    elif isinstance(config, list):
        values = (_first(value, key) for value in config)
    else:
        return None
    return next((value for value in values if value is not None), None)


def describe_run(folder: str) -> Tuple[Tuple[str, str, str], str, float]:
    """((task, model, setting), metric name, value) of one run."""
    with open(os.path.join(folder, "config.json")) as handle:
        config = json.load(handle)
    with open(os.path.join(folder, "metrics.json")) as handle:
        metrics = json.load(handle)
    train_path = str(config.get("train_data_path", ""))
    few_shot = FEW_SHOT_PATH.search(train_path)
    task = _first(config.get("dataset_reader", {}), "task")
    if task is None:
        task = few_shot.group(1) if few_shot else os.path.basename(os.path.dirname(train_path)) or "-"
    model = os.path.basename(str(_first(config.get("model", {}), "model_name") or "-").rstrip("/"))
    setting = f"few-shot k={few_shot.group(2)}" if few_shot else "full data"
    for prefix in ("test_", "best_validation_"):
        for name in ("acc_and_f1", "accuracy"):
            if prefix + name in metrics:
                value = float(metrics[prefix + name])
                label = f"{'test' if prefix == 'test_' else 'best dev'} {name}"
                mismatched = os.path.join(folder, "metrics_mismatched.json")
                if str(task).lower() == "mnli" and prefix == "test_" and os.path.isfile(mismatched):
                    with open(mismatched) as handle:
                        other = float(json.load(handle)["accuracy"])
                    return (task, model, setting), "test accuracy (m + mm) / 2", (value + other) / 2
                return (task, model, setting), label, value
    raise ValueError(f"{folder}/metrics.json has no test_ or best_validation_ accuracy")


def aggregate(paths: List[str]) -> str:
    """A markdown table: task, model, setting, metric, mean ± std over runs, runs."""
    groups: Dict[Tuple[str, str, str, str], List[float]] = defaultdict(list)
    for folder in find_runs(paths):
        key, metric, value = describe_run(folder)
        groups[key + (metric,)].append(value)
    if not groups:
        raise ValueError(f"no serialization directory (config.json + metrics.json) under {paths}")
    lines = ["| task | model | setting | metric | mean ± std | runs |", "|---|---|---|---|---|---|"]
    for (task, model, setting, metric), values in sorted(groups.items()):
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(
            f"| {task} | {model} | {setting} | {metric} | "
            f"{100 * statistics.mean(values):.2f} ± {100 * std:.2f} | {len(values)} |"
        )
    return "\n".join(lines) + "\n"


@Subcommand.register("lpt-aggregate")
class Aggregate(Subcommand):
    """`allennlp lpt-aggregate DIR...`: mean ± std of each experiment over its seeds."""

    # AllenNLP then gives the subcommand --include-package (repeatable) and imports the plugins.
    requires_plugins = True

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Reads serialization directories (config.json and metrics.json), at or under the "
            "given folders, and writes a markdown table: task, model, setting, metric, mean ± "
            "std over the runs (in percent), number of runs. The metric is the test metric "
            "(acc_and_f1 where present, else accuracy) or, without a test set, the best dev one. "
            "For MNLI, a metrics_mismatched.json beside metrics.json (from `allennlp evaluate "
            "... --output-file`) makes the metric the mean of matched and mismatched."
        )
        subparser = parser.add_parser(self.name, description=description, help="Aggregate runs over seeds.")
        subparser.add_argument("dirs", nargs="+")
        subparser.add_argument("--output", default=None, help="write the table here too")
        subparser.set_defaults(func=_run)
        return subparser


def _run(args: argparse.Namespace) -> None:
    table = aggregate(args.dirs)
    print(table, end="")
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(table)
