"""
Config-driven ablations: every combination of a grid of config values, for every training seed
and every few-shot data seed, each trained by `allennlp train` into its own directory, then
tabulated and plotted. `allennlp lpt-sweep` is the command-line entry.
"""
import csv
import itertools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from allennlp.common.checks import ConfigurationError

from allennlp_lpt.experiments.configs import (
    DATA_SEED_FOLDER,
    difference,
    expand_key,
    load_config,
    short_names,
    validation_metric,
)
from allennlp_lpt.experiments.tables import markdown_table, mean_std, mean_std_cell

logger = logging.getLogger(__name__)

Grid = Dict[str, List[Any]]

DATA_PATH_KEYS = ("train_data_path", "validation_data_path", "test_data_path")


def parse_grid(text: str) -> Grid:
    try:
        grid = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"--grid is not valid JSON ({error}): {text!r}") from error
    if not isinstance(grid, dict):
        raise ConfigurationError("--grid must be a JSON object mapping config keys to lists of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigurationError(f"--grid: {key!r} must map to a non-empty list of values")
    return grid


@dataclass
class Run:
    """One training run of a sweep: its folder name, swept values, seeds and -o overrides."""

    name: str
    values: Dict[str, Any]
    seed: Optional[int]
    data_seed: Optional[int]
    overrides: Dict[str, Any]


def run_name(
    values: Dict[str, Any],
    seed: Optional[int],
    names: Optional[Dict[str, str]] = None,
    data_seed: Optional[int] = None,
) -> str:
    names = names or short_names(list(values))
    parts = [f"{names[k]}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in values.items()]
    if data_seed is not None:
        parts.append(f"data_seed={data_seed}")
    if seed is not None:
        parts.append(f"seed={seed}")
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "_".join(parts)) or "run"


def data_seed_overrides(config: Dict[str, Any], data_seed: int) -> Dict[str, str]:
    """
    The data paths of `config` moved to another few-shot split: the `K-SEED` folder of every
    data path that has one (`data/k-shot/sst-2/100-13/train.tsv` -> `.../100-21/...`).
    """
    moved = {
        key: DATA_SEED_FOLDER.sub(lambda match: f"{match.group(1)}-{data_seed}", str(config[key]))
        for key in DATA_PATH_KEYS
        if isinstance(config.get(key), str) and DATA_SEED_FOLDER.search(config[key])
    }
    if not moved:
        paths = ", ".join(f"{key}={config.get(key)!r}" for key in DATA_PATH_KEYS if key in config)
        raise ConfigurationError(
            f"--data-seeds: no data path of the config lies in a K-SEED folder of "
            f"`allennlp lpt-few-shot` (e.g. data/k-shot/sst-2/100-13/train.tsv); it has {paths}. "
            f"Point train_data_path and validation_data_path at one split (with -o), or drop "
            f"--data-seeds."
        )
    return moved


def plan(
    config: Dict[str, Any],
    grid: Grid,
    seeds: Sequence[Optional[int]],
    fixed: Dict[str, Any],
    data_seeds: Sequence[Optional[int]] = (None,),
) -> List[Run]:
    """Every run of `config` (fixed overrides applied): each combination of the grid's values,
    for each data seed and each training seed."""
    expanded = {key: expand_key(config, key) for key in grid}
    names = short_names(list(grid))
    runs = []
    for combination in itertools.product(*grid.values()):
        values = dict(zip(grid, combination))
        for data_seed in data_seeds:
            for seed in seeds:
                overrides = dict(fixed)
                if data_seed is not None:
                    overrides.update(data_seed_overrides(config, data_seed))
                for key, value in values.items():
                    for path in expanded[key]:
                        overrides[path] = value
                if seed is not None:
                    overrides.update({"random_seed": seed, "numpy_seed": seed, "pytorch_seed": seed})
                runs.append(Run(run_name(values, seed, names, data_seed), values, seed, data_seed, overrides))
    return runs


def check_unique_names(runs: Sequence[Run]) -> None:
    """Two runs may never share a folder (values that differ only in characters a folder name
    cannot hold would)."""
    seen: Dict[str, Dict[str, Any]] = {}
    for run in runs:
        described = dict(run.values, seed=run.seed, data_seed=run.data_seed)
        if run.name in seen:
            raise ConfigurationError(
                f"lpt-sweep: the runs {seen[run.name]} and {described} would both be "
                f"named {run.name!r}; make the grid's values differ in letters or digits."
            )
        seen[run.name] = described


def duration_seconds(duration: str) -> float:
    """AllenNLP's `training_duration` (`H:MM:SS.ffffff`) in seconds."""
    hours, minutes, seconds = duration.split(":")
    return 3600 * float(hours) + 60 * float(minutes) + float(seconds)


@dataclass
class SweepOutcome:
    """What a sweep did: its result rows and which runs it trained, reused and lost."""

    rows: List[Dict[str, Any]] = field(default_factory=list)
    trained: List[str] = field(default_factory=list)
    reused: List[str] = field(default_factory=list)
    failed: List[Tuple[str, str]] = field(default_factory=list)  # (run, log)

    def summary(self, output: str) -> str:
        lines = [f"lpt-sweep: {len(self.trained)} trained, {len(self.reused)} reused (finished "
                 f"with the same config), {len(self.failed)} failed; results in {output}"]
        lines += [f"  failed: {name} (log: {log})" for name, log in self.failed]
        return "\n".join(lines)


def sweep(config_path: str, grid: Grid, output: str, **options: Any) -> List[Dict[str, Any]]:
    """`run_sweep`'s result rows (one per finished run)."""
    return run_sweep(config_path, grid, output, **options).rows


def finished_runs(
    config_path: str, runs: Sequence[Run], output: str, *, rerun_changed: bool, command: str = "lpt-sweep"
) -> Set[str]:
    """
    The runs already finished (`metrics.json` written) with the config the sweep would run now.
    One finished with another config is a ConfigurationError naming the first difference,
    unless `rerun_changed` (it is then trained again).
    """
    finished, stale = set(), []
    for run in runs:
        directory = os.path.join(output, run.name)
        if not os.path.isfile(os.path.join(directory, "metrics.json")):
            continue
        with open(os.path.join(directory, "config.json")) as handle:
            saved = json.load(handle)
        found = difference(saved, load_config(config_path, run.overrides))
        if found is None:
            finished.add(run.name)
        else:
            stale.append(f"{run.name} ({found})")
    if stale and not rerun_changed:
        raise ConfigurationError(
            f"{command}: {len(stale)} finished run(s) in {output} were trained with another config "
            f"than this one's: {'; '.join(stale[:5])}. Pass --rerun-changed to train them again "
            f"(their folders are replaced), or give another -s folder."
        )
    return finished


def train_run(config_path: str, run: Run, output: str, include_packages: Sequence[str]) -> Tuple[int, str]:
    """`allennlp train` of one run in a child process, its output into `OUT/logs/RUN.log`:
    (exit status, log path). An unfinished or changed run's folder is replaced."""
    directory = os.path.join(output, run.name)
    log = os.path.join(output, "logs", f"{run.name}.log")
    if os.path.isdir(directory):
        shutil.rmtree(directory)
    command = [sys.executable, "-m", "allennlp", "train", config_path, "-s", directory,
               "-o", json.dumps(run.overrides)]
    for package in include_packages:
        command += ["--include-package", package]
    with open(log, "w") as handle:
        code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT)
    return code, log


def result_row(run: Run, metrics: Dict[str, Any], metric: str) -> Dict[str, Any]:
    """One line of results.csv from a finished run's metrics.json."""
    duration = metrics.get("training_duration")
    return {
        "run": run.name, **run.values, "data_seed": run.data_seed, "seed": run.seed,
        f"best_dev_{metric}": metrics.get(f"best_validation_{metric}"),
        f"test_{metric}": metrics.get(f"test_{metric}"),
        "training_seconds": duration_seconds(duration) if duration else None,
    }


def run_sweep(
    config_path: str,
    grid: Grid,
    output: str,
    *,
    seeds: Sequence[int] = (),
    data_seeds: Sequence[int] = (),
    fixed: Optional[Dict[str, Any]] = None,
    include_packages: Sequence[str] = ("allennlp_lpt",),
    x_key: Optional[str] = None,
    rerun_changed: bool = False,
) -> SweepOutcome:
    """
    Trains every run of the grid (each training seed, each few-shot data seed) that has not
    finished with the same config, then writes the results. A finished run (its `metrics.json`
    exists) is reused only when its saved `config.json` equals the config the sweep would run
    now (`finished_runs`). A failed run is reported with its log and the sweep goes on.
    """
    from tqdm import tqdm

    fixed = dict(fixed or {})
    config = load_config(config_path, fixed)
    runs = plan(config, grid, list(seeds) or [None], fixed, list(data_seeds) or [None])
    check_unique_names(runs)
    metric = validation_metric(config)
    os.makedirs(os.path.join(output, "logs"), exist_ok=True)
    finished = finished_runs(config_path, runs, output, rerun_changed=rerun_changed)
    outcome = SweepOutcome()
    progress = tqdm(runs, desc="lpt-sweep", unit="run")
    for run in progress:
        metrics_file = os.path.join(output, run.name, "metrics.json")
        if run.name in finished:
            outcome.reused.append(run.name)
        else:
            progress.set_postfix_str(run.name)
            code, log = train_run(config_path, run, output, include_packages)
            if code != 0 or not os.path.isfile(metrics_file):
                outcome.failed.append((run.name, log))
                tqdm.write(f"lpt-sweep: run {run.name} failed (exit {code}); its log: {log}")
                continue
            outcome.trained.append(run.name)
        with open(metrics_file) as handle:
            outcome.rows.append(result_row(run, json.load(handle), metric))
    write_results(outcome.rows, grid, output, metric, x_key)
    tqdm.write(outcome.summary(output))
    return outcome


def write_results(rows: List[Dict[str, Any]], grid: Grid, output: str, metric: str, x_key: Optional[str]) -> None:
    """OUT/results.csv (one row per run), OUT/results.md (mean ± std over the training and data
    seeds of each combination) and OUT/plot.png."""
    columns = ["run", *grid, "data_seed", "seed", f"best_dev_{metric}", f"test_{metric}", "training_seconds"]
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
    table = markdown_table(
        [*grid, f"{score} mean ± std", "runs"],
        [[*key, mean_std_cell(values, digits=4), len(values)] for key, values in sorted(groups.items())],
    )
    with open(os.path.join(output, "results.md"), "w") as handle:
        handle.write(table)
    if grid:
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
    import matplotlib.pyplot as plt

    figure = draw(rows, grid, score, x_key)
    figure.savefig(path, dpi=120, bbox_inches="tight")  # long legend entries are not clipped
    plt.close(figure)


def draw(rows: List[Dict[str, Any]], grid: Grid, score: str, x_key: str):
    """The figure `plot` saves (a matplotlib Figure)."""
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
        means, stds = zip(*(mean_std(points[x]) for x in xs))
        names = short_names(list(grid))
        name = ", ".join(f"{names[k]}={v}" for k, v in zip(others, label)) or score
        axes.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=name)
    if all(isinstance(v, int) for v in grid[x_key]):  # layers, lengths: no 2.5 on the axis
        from matplotlib.ticker import MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(x_key.rsplit(".", 1)[-1])
    axes.set_ylabel(score)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure
