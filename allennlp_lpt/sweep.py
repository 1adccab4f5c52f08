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


def short_names(keys: Sequence[str]) -> Dict[str, str]:
    """Each key's shortest dotted suffix that no other key ends with: `a.dropout` and
    `b.dropout` stay `a.dropout` and `b.dropout`, `*.prompt_layer` alone is `prompt_layer`."""
    names = {}
    for key in keys:
        parts = key.split(".")
        for length in range(1, len(parts) + 1):
            suffix = ".".join(parts[-length:])
            if not any(other != key and (other == suffix or other.endswith("." + suffix)) for other in keys):
                break
        names[key] = suffix
    return names


def run_name(values: Dict[str, Any], seed: Optional[int], names: Optional[Dict[str, str]] = None) -> str:
    names = names or short_names(list(values))
    parts = [f"{names[k]}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in values.items()]
    if seed is not None:
        parts.append(f"seed={seed}")
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "_".join(parts))


def load_config(config_path: str, fixed: Dict[str, Any]) -> Dict[str, Any]:
    return Params.from_file(config_path, params_overrides=json.dumps(fixed)).as_dict(quiet=True)


def plan(config: Dict[str, Any], grid: Grid, seeds: Sequence[Optional[int]], fixed: Dict[str, Any]):
    """Yields (name, swept values, seed, overrides) for every run of `config` (fixed overrides applied)."""
    expanded = {key: expand_key(config, key) for key in grid}
    names = short_names(list(grid))
    for combination in itertools.product(*grid.values()):
        values = dict(zip(grid, combination))
        for seed in seeds:
            overrides = dict(fixed)
            for key, value in values.items():
                for path in expanded[key]:
                    overrides[path] = value
            if seed is not None:
                overrides.update({"random_seed": seed, "numpy_seed": seed, "pytorch_seed": seed})
            yield run_name(values, seed, names), values, seed, overrides


def check_unique_names(runs: Sequence[Tuple[str, Dict[str, Any], Optional[int], Dict[str, Any]]]) -> None:
    """Two runs may never share a folder (values that differ only in characters a folder name
    cannot hold would)."""
    seen: Dict[str, Dict[str, Any]] = {}
    for name, values, seed, _ in runs:
        if name in seen:
            raise ConfigurationError(
                f"lpt-sweep: the runs {seen[name]} and {dict(values, seed=seed)} would both be "
                f"named {name!r}; make the grid's values differ in letters or digits."
            )
        seen[name] = dict(values, seed=seed)


def config_difference(saved: Any, wanted: Any, path: str = "") -> Optional[str]:
    """The first key where two configs differ (`None` when they are equal), for messages."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        for key in sorted(set(saved) | set(wanted)):
            dotted = f"{path}.{key}" if path else key
            if key not in saved or key not in wanted:
                return f"{dotted} is {'only in the new config' if key not in saved else 'only in the saved one'}"
            found = config_difference(saved[key], wanted[key], dotted)
            if found:
                return found
        return None
    if isinstance(saved, list) and isinstance(wanted, list) and len(saved) == len(wanted):
        for index, (a, b) in enumerate(zip(saved, wanted)):
            found = config_difference(a, b, f"{path}.{index}")
            if found:
                return found
        return None
    return None if saved == wanted else f"{path}: saved {json.dumps(saved)}, now {json.dumps(wanted)}"


def _seconds(duration: str) -> float:
    hours, minutes, seconds = duration.split(":")
    return 3600 * float(hours) + 60 * float(minutes) + float(seconds)


def validation_metric(config: Dict[str, Any]) -> str:
    metric = config.get("trainer", {}).get("validation_metric", "-loss")
    metric = metric[0] if isinstance(metric, list) else metric
    return metric.lstrip("+-")


class SweepOutcome:
    """What a sweep did: its result rows and which runs it trained, reused and lost."""

    def __init__(self) -> None:
        self.rows: List[Dict[str, Any]] = []
        self.trained: List[str] = []
        self.reused: List[str] = []
        self.failed: List[Tuple[str, str]] = []  # (run, log)

    def summary(self, output: str) -> str:
        lines = [f"lpt-sweep: {len(self.trained)} trained, {len(self.reused)} reused (finished "
                 f"with the same config), {len(self.failed)} failed; results in {output}"]
        lines += [f"  failed: {name} (log: {log})" for name, log in self.failed]
        return "\n".join(lines)


def sweep(config_path: str, grid: Grid, output: str, **options: Any) -> List[Dict[str, Any]]:
    """`run_sweep`'s result rows (one per finished run)."""
    return run_sweep(config_path, grid, output, **options).rows


def run_sweep(
    config_path: str,
    grid: Grid,
    output: str,
    *,
    seeds: Sequence[int] = (),
    fixed: Optional[Dict[str, Any]] = None,
    include_packages: Sequence[str] = ("allennlp_lpt",),
    x_key: Optional[str] = None,
    rerun_changed: bool = False,
) -> SweepOutcome:
    """
    Trains every run of the grid that has not finished with the same config, then writes the
    results. A finished run (its `metrics.json` exists) is reused only when its saved
    `config.json` equals the config the sweep would run now; otherwise the sweep stops before
    training anything, naming the runs and the first difference, unless `rerun_changed`, which
    trains them again.
    """
    from tqdm import tqdm

    fixed = dict(fixed or {})
    config = load_config(config_path, fixed)
    runs = list(plan(config, grid, list(seeds) or [None], fixed))
    check_unique_names(runs)
    metric = validation_metric(config)
    os.makedirs(os.path.join(output, "logs"), exist_ok=True)
    outcome = SweepOutcome()
    stale = []
    finished = set()
    for name, _, _, overrides in runs:
        directory = os.path.join(output, name)
        if os.path.isfile(os.path.join(directory, "metrics.json")):
            with open(os.path.join(directory, "config.json")) as handle:
                saved = json.load(handle)
            difference = config_difference(saved, load_config(config_path, overrides))
            if difference is None:
                finished.add(name)
            else:
                stale.append(f"{name} ({difference})")
    if stale and not rerun_changed:
        raise ConfigurationError(
            f"lpt-sweep: {len(stale)} finished run(s) in {output} were trained with another config "
            f"than this sweep's: {'; '.join(stale[:5])}. Pass --rerun-changed to train them again "
            f"(their folders are replaced), or give another -s folder."
        )
    progress = tqdm(runs, desc="lpt-sweep", unit="run")
    for name, values, seed, overrides in progress:
        directory = os.path.join(output, name)
        log = os.path.join(output, "logs", f"{name}.log")
        metrics_file = os.path.join(directory, "metrics.json")
        if name in finished:
            outcome.reused.append(name)
        else:
            if os.path.isdir(directory):
                shutil.rmtree(directory)  # an unfinished or changed run starts again
            progress.set_postfix_str(name)
            command = [sys.executable, "-m", "allennlp", "train", config_path, "-s", directory,
                       "-o", json.dumps(overrides)]
            for package in include_packages:
                command += ["--include-package", package]
            with open(log, "w") as handle:
                code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT)
            if code != 0 or not os.path.isfile(metrics_file):
                outcome.failed.append((name, log))
                tqdm.write(f"lpt-sweep: run {name} failed (exit {code}); its log: {log}")
                continue
            outcome.trained.append(name)
        with open(metrics_file) as handle:
            metrics = json.load(handle)
        outcome.rows.append({
            "run": name, **values, "seed": seed,
            f"best_dev_{metric}": metrics.get(f"best_validation_{metric}"),
            f"test_{metric}": metrics.get(f"test_{metric}"),
            "training_seconds": _seconds(metrics["training_duration"]) if "training_duration" in metrics else None,
        })
    write_results(outcome.rows, grid, output, metric, x_key)
    tqdm.write(outcome.summary(output))
    return outcome


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
        names = short_names(list(grid))
        name = ", ".join(f"{names[k]}={v}" for k, v in zip(others, label)) or score
        axes.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=name)
    axes.set_xlabel(_short(x_key))
    axes.set_ylabel(score)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
