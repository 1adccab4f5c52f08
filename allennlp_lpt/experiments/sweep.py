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
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from allennlp.common.checks import ConfigurationError

from allennlp_lpt.experiments.configs import (
    DATA_SEED_FOLDER,
    difference,
    expand_key,
    load_config,
    short_names,
    validation_metric,
)
from allennlp_lpt.experiments.runs import is_finished, lean_overrides, mark_finished, owning_output, run_lock, train
from allennlp_lpt.experiments.tables import (
    PERCENT_NOTE,
    label_count,
    markdown_table,
    mean_std,
    metric_cell,
    metric_scale,
)

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
    for each data seed and each training seed. A seed given twice is a ConfigurationError naming
    its flag (it would train one run twice and count it as two seeds)."""
    check_distinct(seeds, "--seeds")
    check_distinct(data_seeds, "--data-seeds")
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


def check_distinct(values: Sequence[Any], flag: str) -> None:
    """A ConfigurationError naming `flag` where a value is given more than once."""
    repeated = sorted({value for value in values if list(values).count(value) > 1}, key=str)
    if repeated:
        raise ConfigurationError(
            f"{flag}: {', '.join(map(str, repeated))} given more than once; give each once."
        )


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
class Outcome:
    """Which runs a command trained, reused (finished with the same config) and lost."""

    trained: List[str] = field(default_factory=list)
    reused: List[str] = field(default_factory=list)
    failed: List[Tuple[str, str]] = field(default_factory=list)  # (run, log)


@dataclass
class SweepOutcome(Outcome):
    """What a sweep did: its result rows and which runs it trained, reused and lost."""

    rows: List[Dict[str, Any]] = field(default_factory=list)

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
    The runs already finished (`runs.is_finished`: the archive verified and marked; an unmarked
    run is verified now) with the config the command would run now. Every run finished with
    another config is named in a ConfigurationError, unless `rerun_changed` (they are then
    trained again); a run that did not finish (killed, out of disk, its archive incomplete) is
    trained again, and said so.
    """
    from tqdm import tqdm

    finished, stale, unfinished = set(), [], []
    for run in runs:
        directory = os.path.join(output, run.name)
        if not os.path.isdir(directory):
            continue
        problem = None if is_finished(directory) else mark_finished(directory)
        if problem is not None:
            unfinished.append(f"{run.name} ({problem})")
            continue
        with open(os.path.join(directory, "config.json")) as handle:
            saved = json.load(handle)
        found = difference(saved, load_config(config_path, run.overrides))
        if found is None:
            finished.add(run.name)
        else:
            stale.append(f"{run.name} ({found})")
    if stale and not rerun_changed:
        listed = "".join(f"\n  {entry}" for entry in stale)
        raise ConfigurationError(
            f"{command}: {len(stale)} finished run(s) in {output} were trained with another config "
            f"than this one's:{listed}\nPass --rerun-changed to train them again (their folders "
            f"are replaced), or give another -s folder."
        )
    for entry in unfinished:
        tqdm.write(f"{command}: unfinished run {entry}: trained again")
    return finished


def train_run(config_path: str, run: Run, output: str, include_packages: Sequence[str]) -> Tuple[Optional[str], str]:
    """
    `allennlp train` of one run (`runs.train`: a child process that never outlives this one),
    under the run's lock, its output into `OUT/logs/RUN.log`, then the run marked finished:
    (why it failed, None when it finished; the log's path). An unfinished or changed run's
    folder is replaced.
    """
    directory = os.path.join(output, run.name)
    log = os.path.join(output, "logs", f"{run.name}.log")
    with run_lock(output, run.name):
        code = train(config_path, directory, overrides=run.overrides, log=log, include_packages=include_packages)
        if code != 0:
            return f"exit {code}", log
        problem = mark_finished(directory)
    return (None if problem is None else f"exit 0, but {problem}"), log


def train_missing(
    todo: Sequence[Tuple[str, Run]],
    output: str,
    *,
    finished: Set[str],
    include_packages: Sequence[str],
    outcome: Outcome,
    command: str,
) -> Iterator[Run]:
    """Trains each (config path, run) of `todo` not in `finished`, one after the other, and
    yields each run that is finished (reused or trained); `outcome` records which."""
    from tqdm import tqdm

    progress = tqdm(todo, desc=command, unit="run")
    for index, (config_path, run) in enumerate(progress):
        if run.name in finished:
            outcome.reused.append(run.name)
        else:
            progress.set_postfix_str(f"{run.name} ({index + 1}/{len(todo)})")
            problem, log = train_run(config_path, run, output, include_packages)
            if problem is not None:
                outcome.failed.append((run.name, log))
                tqdm.write(f"{command}: run {run.name} failed ({problem}); its log: {log}")
                continue
            outcome.trained.append(run.name)
        yield run


def result_row(run: Run, metrics: Dict[str, Any], metric: str) -> Dict[str, Any]:
    """One line of results.csv from a finished run's metrics.json."""
    duration = metrics.get("training_duration")
    return {
        "run": run.name, **run.values, "data_seed": run.data_seed, "seed": run.seed,
        f"best_dev_{metric}": metrics.get(f"best_validation_{metric}"),
        f"test_{metric}": metrics.get(f"test_{metric}"),
        "best_dev_macro_f1": metrics.get("best_validation_macro_f1"),
        "test_macro_f1": metrics.get("test_macro_f1"),
        "labels": label_count(metrics) or None,
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
    keep_all: bool = False,
) -> SweepOutcome:
    """
    Trains every run of the grid (each training seed, each few-shot data seed) that has not
    finished with the same config, then writes the results. A finished run (its archive
    verified and marked, `runs.is_finished`) is reused only when its saved `config.json` equals
    the config the sweep would run now (`finished_runs`). A failed run is reported with its log
    and the sweep goes on. The runs keep lean folders (`runs.lean_overrides`: no frozen backbone
    in the archive, no per-epoch checkpoints) unless `keep_all`; `fixed` overrides them. A second
    command on `output` while this one runs is refused (`runs.owning_output`).
    """
    from tqdm import tqdm

    fixed = dict(fixed or {})
    config = load_config(config_path, fixed)
    if not keep_all:
        fixed = {**lean_overrides(config), **fixed}
    runs = plan(config, grid, list(seeds) or [None], fixed, list(data_seeds) or [None])
    check_unique_names(runs)
    metric = validation_metric(config)
    os.makedirs(output, exist_ok=True)
    with owning_output(output, command="lpt-sweep"):
        os.makedirs(os.path.join(output, "logs"), exist_ok=True)
        finished = finished_runs(config_path, runs, output, rerun_changed=rerun_changed)
        outcome = SweepOutcome()
        for run in train_missing([(config_path, run) for run in runs], output, finished=finished,
                                 include_packages=include_packages, outcome=outcome, command="lpt-sweep"):
            with open(os.path.join(output, run.name, "metrics.json")) as handle:
                outcome.rows.append(result_row(run, json.load(handle), metric))
        write_results(outcome.rows, grid, output, metric, x_key)
    tqdm.write(outcome.summary(output))
    return outcome


def write_results(rows: List[Dict[str, Any]], grid: Grid, output: str, metric: str, x_key: Optional[str]) -> None:
    """OUT/results.csv (one row per run, the metrics as metrics.json holds them: fractions),
    OUT/results.md (mean ± std over the training and data seeds of each combination, in percent;
    macro-F1 beside the metric where a run has more than two labels) and OUT/plot.png."""
    columns = ["run", *grid, "data_seed", "seed", f"best_dev_{metric}", f"test_{metric}", "best_dev_macro_f1",
               "test_macro_f1", "labels", "training_seconds"]
    with open(os.path.join(output, "results.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: ("" if row.get(c) is None else row.get(c)) for c in columns})
    on_test = any(r.get(f"test_{metric}") is not None for r in rows)
    score = f"test_{metric}" if on_test else f"best_dev_{metric}"
    macro = ("test_macro_f1" if on_test else "best_dev_macro_f1") if any((r.get("labels") or 0) > 2 for r in rows) \
        else None
    groups: Dict[Tuple, List[Dict[str, Any]]] = {}
    for row in rows:
        if row.get(score) is not None:
            groups.setdefault(tuple(json.dumps(row[k]) for k in grid), []).append(row)
    unit = " (%)" if metric_scale(metric) == 100.0 else ""
    table = markdown_table(
        [*grid, f"{score}{unit}", *([f"{macro} (%)"] if macro else []), "runs"],
        [[*key, metric_cell([r[score] for r in group], metric),
          *([metric_cell([r.get(macro) for r in group], "macro_f1")] if macro else []), len(group)]
         for key, group in sorted(groups.items())],
    )
    with open(os.path.join(output, "results.md"), "w") as handle:
        handle.write(f"{PERCENT_NOTE}\n\n{table}")
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
    scale = metric_scale(re.sub(r"^(best_dev_|test_)", "", score))  # percent, as in results.md
    lines: Dict[Tuple, Dict[Any, List[float]]] = {}
    for row in rows:
        if row.get(score) is None:
            continue
        label = tuple(row[k] for k in others)
        lines.setdefault(label, {}).setdefault(row[x_key], []).append(scale * float(row[score]))
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
    axes.set_ylabel(f"{score} (%)" if scale == 100.0 else score)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure
