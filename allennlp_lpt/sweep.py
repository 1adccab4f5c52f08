"""
Config-driven ablations: every combination of a grid of config values, for every seed, each
trained by `allennlp train` into its own directory, then tabulated and plotted.
`allennlp lpt-sweep` is the command-line entry.
"""
import csv
import itertools
import json
import logging
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from allennlp.common import Params
from allennlp.common.checks import ConfigurationError

logger = logging.getLogger(__name__)

Grid = Dict[str, List[Any]]


def parse_grid(text: str) -> Grid:
    try:
        grid = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"--grid is not valid JSON ({error}): {text!r}") from error
    if not isinstance(grid, dict) or not grid:
        raise ConfigurationError("--grid must be a JSON object mapping config keys to lists of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigurationError(f"--grid: {key!r} must map to a non-empty list of values")
    return grid


def _paths_of(config: Any, key: str, prefix: str = "") -> Iterator[str]:
    if isinstance(config, dict):
        for name, value in config.items():
            path = f"{prefix}{name}"
            if name == key:
                yield path
            yield from _paths_of(value, key, path + ".")
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from _paths_of(value, key, f"{prefix}{index}.")


def expand_key(config: Dict[str, Any], key: str) -> List[str]:
    """`*.name` means every `name` anywhere in the config; other keys are dotted paths."""
    if not key.startswith("*."):
        return [key]
    paths = list(_paths_of(config, key[2:]))
    if not paths:
        raise ConfigurationError(f"--grid key {key!r}: the config has no key {key[2:]!r}")
    return paths


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def run_name(values: Dict[str, Any], seed: Optional[int]) -> str:
    parts = [f"{_short(k)}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in values.items()]
    if seed is not None:
        parts.append(f"seed={seed}")
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "_".join(parts))


def load_config(config_path: str, fixed: Dict[str, Any]) -> Dict[str, Any]:
    return Params.from_file(config_path, params_overrides=json.dumps(fixed)).as_dict(quiet=True)


def plan(config: Dict[str, Any], grid: Grid, seeds: Sequence[Optional[int]], fixed: Dict[str, Any]):
    """Yields (name, swept values, seed, overrides) for every run of `config` (fixed overrides applied)."""
    expanded = {key: expand_key(config, key) for key in grid}
    for combination in itertools.product(*grid.values()):
        values = dict(zip(grid, combination))
        for seed in seeds:
            overrides = dict(fixed)
            for key, value in values.items():
                for path in expanded[key]:
                    overrides[path] = value
            if seed is not None:
                overrides.update({"random_seed": seed, "numpy_seed": seed, "pytorch_seed": seed})
            yield run_name(values, seed), values, seed, overrides


def _seconds(duration: str) -> float:
    hours, minutes, seconds = duration.split(":")
    return 3600 * float(hours) + 60 * float(minutes) + float(seconds)


def validation_metric(config: Dict[str, Any]) -> str:
    metric = config.get("trainer", {}).get("validation_metric", "-loss")
    metric = metric[0] if isinstance(metric, list) else metric
    return metric.lstrip("+-")


def sweep(
    config_path: str,
    grid: Grid,
    output: str,
    *,
    seeds: Sequence[int] = (),
    fixed: Optional[Dict[str, Any]] = None,
    include_packages: Sequence[str] = ("allennlp_lpt",),
    x_key: Optional[str] = None,
) -> List[Dict[str, Any]]:
    from tqdm import tqdm

    fixed = dict(fixed or {})
    config = load_config(config_path, fixed)
    runs = list(plan(config, grid, list(seeds) or [None], fixed))
    metric = validation_metric(config)
    os.makedirs(os.path.join(output, "logs"), exist_ok=True)
    rows: List[Dict[str, Any]] = []
    failed: List[Tuple[str, str]] = []
    progress = tqdm(runs, desc="lpt-sweep", unit="run")
    for name, values, seed, overrides in progress:
        directory = os.path.join(output, name)
        log = os.path.join(output, "logs", f"{name}.log")
        metrics_file = os.path.join(directory, "metrics.json")
        if not os.path.isfile(metrics_file):
            if os.path.isdir(directory):
                shutil.rmtree(directory)  # an unfinished run starts again
            progress.set_postfix_str(name)
            command = [sys.executable, "-m", "allennlp", "train", config_path, "-s", directory,
                       "-o", json.dumps(overrides)]
            for package in include_packages:
                command += ["--include-package", package]
            with open(log, "w") as handle:
                code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT)
            if code != 0 or not os.path.isfile(metrics_file):
                failed.append((name, log))
                tqdm.write(f"lpt-sweep: run {name} failed (exit {code}); its log: {log}")
                continue
        with open(metrics_file) as handle:
            metrics = json.load(handle)
        rows.append({
            "run": name, **values, "seed": seed,
            f"best_dev_{metric}": metrics.get(f"best_validation_{metric}"),
            f"test_{metric}": metrics.get(f"test_{metric}"),
            "training_seconds": _seconds(metrics["training_duration"]) if "training_duration" in metrics else None,
        })
    write_results(rows, grid, output, metric, x_key)
    if failed:
        tqdm.write(f"lpt-sweep: {len(failed)} of {len(runs)} runs failed: " + ", ".join(n for n, _ in failed))
    return rows


def _mean_std(values: List[float]) -> Tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def write_results(rows: List[Dict[str, Any]], grid: Grid, output: str, metric: str, x_key: Optional[str]) -> None:
    columns = ["run", *grid, "seed", f"best_dev_{metric}", f"test_{metric}", "training_seconds"]
    with open(os.path.join(output, "results.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: ("" if row.get(c) is None else row.get(c)) for c in columns})
    score = f"test_{metric}" if any(r.get(f"test_{metric}") is not None for r in rows) else f"best_dev_{metric}"
    groups: Dict[Tuple, List[float]] = {}
    for row in rows:
        if row.get(score) is not None:
            groups.setdefault(tuple(json.dumps(row[k]) for k in grid), []).append(float(row[score]))
    lines = [f"| {' | '.join(grid)} | {score} mean ± std | runs |",
             "|" + "---|" * (len(grid) + 2)]
    for key, values in sorted(groups.items()):
        mean, std = _mean_std(values)
        lines.append(f"| {' | '.join(key)} | {mean:.4f} ± {std:.4f} | {len(values)} |")
    with open(os.path.join(output, "results.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    plot(rows, grid, score, os.path.join(output, "plot.png"), x_key)


def plot(rows: List[Dict[str, Any]], grid: Grid, score: str, path: str, x_key: Optional[str]) -> None:
    """The score against one numeric swept key, one line per combination of the others."""
    numeric = [k for k, values in grid.items() if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)]
    if x_key is None:
        if not numeric:
            logger.warning("No numeric swept key to plot against; plot.png not written.")
            return
        x_key = numeric[0]
    if x_key not in grid:
        raise ConfigurationError(f"--x {x_key!r} is not a swept key ({', '.join(grid)})")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = [k for k in grid if k != x_key]
    lines: Dict[Tuple, Dict[Any, List[float]]] = {}
    for row in rows:
        if row.get(score) is None:
            continue
        label = tuple(row[k] for k in others)
        lines.setdefault(label, {}).setdefault(row[x_key], []).append(float(row[score]))
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for label, points in sorted(lines.items(), key=lambda item: json.dumps(item[0])):
        xs = sorted(points)
        means = [statistics.mean(points[x]) for x in xs]
        stds = [statistics.stdev(points[x]) if len(points[x]) > 1 else 0.0 for x in xs]
        name = ", ".join(f"{_short(k)}={v}" for k, v in zip(others, label)) or score
        axes.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=name)
    axes.set_xlabel(_short(x_key))
    axes.set_ylabel(score)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
