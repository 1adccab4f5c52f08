"""
Late prompt tuning beside the other tuning methods, with the method as the only difference:
for each method and seed, the base config with that method swapped in (`experiments.methods`),
trained by `allennlp train` through the sweep's machinery (resumable, failures reported, runs
verified before they count: `experiments.runs`), then one table and one plot. `allennlp lpt-compare` is the command-line entry.
"""
import csv
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from allennlp.common.checks import ConfigurationError
from allennlp.common.params import parse_overrides, with_overrides

from allennlp_lpt.experiments.configs import load_config, validation_metric
from allennlp_lpt.experiments.methods import check_methods, with_method
from allennlp_lpt.experiments.runs import inference_throughput, lean_overrides, owning_output
from allennlp_lpt.experiments.sweep import (
    Outcome,
    Run,
    check_distinct,
    duration_seconds,
    finished_runs,
    plan,
    train_missing,
)
from allennlp_lpt.experiments.tables import PERCENT_NOTE, label_count, markdown_table, mean_std, metric_cell

# The CSV files hold the metrics as metrics.json does (fractions); comparison.md shows percent.
COLUMNS = ("method", "accuracy_mean", "accuracy_std", "macro_f1_mean", "macro_f1_std", "seeds",
           "trainable_parameters", "train_seconds", "peak_memory_mb", "archive_mb", "sentences_per_second")
RUN_COLUMNS = ("method", "seed", "run", "score", "macro_f1", "labels", "trainable_parameters", "train_seconds",
               "peak_memory_mb", "archive_mb", "sentences_per_second", "stopped_by_time_budget")


@dataclass
class Comparison(Outcome):
    """What `compare` did: one row per method, one per finished run, and which runs it
    trained, reused and lost."""

    rows: List[Dict[str, Any]] = field(default_factory=list)
    runs: List[Dict[str, Any]] = field(default_factory=list)

    def summary(self, output: str) -> str:
        lines = [f"lpt-compare: {len(self.trained)} trained, {len(self.reused)} reused, "
                 f"{len(self.failed)} failed; table in {os.path.join(output, 'comparison.md')}"]
        lines += [f"  failed: {name} (log: {log})" for name, log in self.failed]
        return "\n".join(lines)


def method_config(
    base: Dict[str, Any],
    method: str,
    options: Optional[Dict[str, Any]],
    time_budget: Optional[float],
    *,
    source: str,
    overrides: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """`base` with `method` swapped in (its `options` over the defaults), then the dotted
    `overrides` of the swapped config (e.g. from a search), then the time budget."""
    config = with_method(base, method, options, source=source)
    if overrides:
        config = with_overrides(config, parse_overrides(json.dumps(overrides)))
    if time_budget is not None:
        callbacks = config.setdefault("trainer", {}).setdefault("callbacks", [])
        callbacks.append({"type": "lpt_time_budget", "seconds": time_budget})
    return config


def method_configs(
    config_path: str,
    methods: Sequence[str],
    output: str,
    overrides: Dict[str, Any],
    method_options: Dict[str, Dict[str, Any]],
    time_budget: Optional[float],
    method_overrides: Optional[Dict[str, Dict[str, Any]]] = None,
) -> Dict[str, str]:
    """Writes `OUT/configs/METHOD.json` for each method (the base config with `-o` applied,
    the method swapped in, its `method_overrides` applied, the time budget added) and returns
    their paths."""
    check_methods(methods)
    unknown = [m for m in method_options if m not in methods]
    if unknown:
        raise ConfigurationError(f"--method-options: {unknown} are not among --methods {list(methods)}.")
    if time_budget is not None and not time_budget > 0:
        raise ConfigurationError(f"--time-budget {time_budget}: give a number of seconds above 0.")
    base = load_config(config_path, overrides)
    os.makedirs(os.path.join(output, "configs"), exist_ok=True)
    paths = {}
    for method in methods:
        config = method_config(base, method, method_options.get(method), time_budget, source=config_path,
                               overrides=(method_overrides or {}).get(method))
        paths[method] = os.path.join(output, "configs", f"{method}.json")
        with open(paths[method], "w") as handle:
            json.dump(config, handle, indent=2)
    return paths


def run_result(directory: str, metric: str) -> Dict[str, Any]:
    """What one finished run measured: its score (test metric where the config evaluated on
    test, else the best validation metric) and macro-F1 on the same set, parameters, time, peak
    memory, archive size and inference throughput on the set it is scored on
    (`runs.inference_throughput`, measured the first time the run is read)."""
    with open(os.path.join(directory, "metrics.json")) as handle:
        metrics = json.load(handle)
    counts: Dict[str, int] = {}
    counts_file = os.path.join(directory, "parameter_counts.json")
    if os.path.isfile(counts_file):  # written by lpt_parameter_counts (the shipped configs add it)
        with open(counts_file) as handle:
            counts = json.load(handle)
    duration = metrics.get("training_duration")
    memory = [v for k, v in metrics.items() if k.startswith("peak_gpu_") and k.endswith("_memory_MB")] or \
             [v for k, v in metrics.items() if k.startswith("peak_worker_") and k.endswith("_memory_MB")]
    archive = os.path.join(directory, "model.tar.gz")
    on_test = f"test_{metric}" in metrics
    prefix = "test_" if on_test else "best_validation_"
    return {
        "score": metrics.get(f"{prefix}{metric}"),
        "macro_f1": metrics.get(f"{prefix}macro_f1"),
        "labels": label_count(metrics) or None,
        "sentences_per_second": inference_throughput(directory)["sentences_per_second"],
        "scored_on": "test" if on_test else "validation",
        "trainable_parameters": counts.get("trainable"),
        "train_seconds": duration_seconds(duration) if duration else None,
        "peak_memory_mb": max(memory) if memory else None,
        "archive_mb": os.path.getsize(archive) / 2**20 if os.path.isfile(archive) else None,
        "stopped_by_time_budget": metrics.get("stopped_by_time_budget", False),
    }


def compare(
    config_path: str,
    output: str,
    *,
    methods: Sequence[str],
    seeds: Sequence[int] = (),
    overrides: Optional[Dict[str, Any]] = None,
    method_options: Optional[Dict[str, Dict[str, Any]]] = None,
    time_budget: Optional[float] = None,
    include_packages: Sequence[str] = ("allennlp_lpt",),
    rerun_changed: bool = False,
    keep_all: bool = False,
    method_overrides: Optional[Dict[str, Dict[str, Any]]] = None,
) -> Comparison:
    """
    Trains every (method, seed) run not finished with the same config (`sweep.finished_runs`),
    then writes `OUT/comparison.csv`, `OUT/comparison.md`, `OUT/comparison.png` and
    `OUT/runs.csv`. The runs keep lean folders (`runs.lean_overrides`) unless `keep_all`; a
    second command on `output` while this one runs is refused (`runs.owning_output`).
    `method_overrides` are dotted keys of a method's swapped config (a search's best values).
    """
    from tqdm import tqdm

    check_distinct(seeds, "--seeds")  # before any config is written
    check_methods(methods)  # before OUT is made
    # Locked before anything is written: a command refused leaves the running one's files alone.
    with owning_output(output, command="lpt-compare"):
        paths = method_configs(config_path, methods, output, dict(overrides or {}),
                               dict(method_options or {}), time_budget, method_overrides)
        metric = validation_metric(load_config(paths[methods[0]], {}))
        os.makedirs(os.path.join(output, "logs"), exist_ok=True)
        todo: List[Tuple[str, Run]] = []
        finished = set()
        for method in methods:
            config = load_config(paths[method], {})
            # The seeds' overrides, over the lean defaults.
            runs = plan(config, {}, list(seeds) or [None], {} if keep_all else lean_overrides(config))
            for run in runs:
                run.name = method if run.seed is None else f"{method}_{run.name}"
                run.values = {"method": method}
            finished |= finished_runs(paths[method], runs, output, rerun_changed=rerun_changed,
                                      command="lpt-compare")
            todo += [(paths[method], run) for run in runs]
        outcome = Comparison()
        for run in train_missing(todo, output, finished=finished, include_packages=include_packages,
                                 outcome=outcome, command="lpt-compare"):
            outcome.runs.append({"method": run.values["method"], "seed": run.seed, "run": run.name,
                                 **run_result(os.path.join(output, run.name), metric)})
        outcome.rows = summarise(outcome.runs, methods)
        write_outputs(outcome, output, metric, time_budget)
    tqdm.write(outcome.summary(output))
    return outcome


def summarise(runs: List[Dict[str, Any]], methods: Sequence[str]) -> List[Dict[str, Any]]:
    """One row per method: the score's mean and std over its seeds, the medians of the rest."""
    import statistics

    rows = []
    for method in methods:
        mine = [r for r in runs if r["method"] == method and r["score"] is not None]
        if not mine:
            continue
        mean, std = mean_std([float(r["score"]) for r in mine])
        macro = [float(r["macro_f1"]) for r in mine if r["macro_f1"] is not None and (r["labels"] or 0) > 2]
        macro_mean, macro_std = mean_std(macro) if macro else (None, None)

        def median(key: str) -> Optional[float]:
            values = [r[key] for r in mine if r[key] is not None]
            return statistics.median(values) if values else None

        rows.append({"method": method, "accuracy_mean": mean, "accuracy_std": std, "macro_f1_mean": macro_mean,
                     "macro_f1_std": macro_std, "seeds": len(mine),
                     "trainable_parameters": median("trainable_parameters"),
                     "train_seconds": median("train_seconds"), "peak_memory_mb": median("peak_memory_mb"),
                     "archive_mb": median("archive_mb"), "sentences_per_second": median("sentences_per_second"),
                     "scores": [float(r["score"]) for r in mine], "macro_f1s": macro})
    return rows


def write_outputs(outcome: Comparison, output: str, metric: str, time_budget: Optional[float]) -> None:
    for name, columns, rows in (("comparison.csv", COLUMNS, outcome.rows), ("runs.csv", RUN_COLUMNS, outcome.runs)):
        with open(os.path.join(output, name), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows([{c: ("" if r.get(c) is None else r.get(c)) for c in columns} for r in rows])
    scored_on = sorted({r["scored_on"] for r in outcome.runs}) or ["validation"]
    what = f"`{'test_' if scored_on == ['test'] else 'best_validation_'}{metric}`" if len(scored_on) == 1 \
        else f"{metric} on {' and '.join(scored_on)}"
    budget = f"{time_budget:g} s of training each (lpt_time_budget)" if time_budget else "the config's epochs"
    with_macro = any(r["macro_f1_mean"] is not None for r in outcome.rows)
    lines = [f"Accuracy: {what} of the best checkpoint{' (and macro-F1 on the same set)' if with_macro else ''}; "
             f"at {budget}. {PERCENT_NOTE} Trainable parameters, training seconds (wall clock, validation "
             f"included), peak memory (GPU where there is one, else the process's), archive size and "
             f"inference throughput (sentences/s of the archived model's forward passes over the set "
             f"scored on, measured when the run is scored): medians over seeds.", ""]
    table = markdown_table(
        ["method", "accuracy (%)", *(["macro-F1 (%)"] if with_macro else []), "seeds", "trainable params",
         "train s", "peak memory MB", "archive MB", "sentences/s"],
        [[r["method"], metric_cell(r["scores"], metric), *([metric_cell(r["macro_f1s"], "macro_f1")] if with_macro
                                                           else []),
          r["seeds"], _integer(r["trainable_parameters"]), _number(r["train_seconds"], 1),
          _number(r["peak_memory_mb"], 0), _number(r["archive_mb"], 2), _number(r["sentences_per_second"], 0)]
         for r in outcome.rows],
    )
    with open(os.path.join(output, "comparison.md"), "w") as handle:
        handle.write("\n".join(lines) + table)
    if outcome.rows:
        plot(outcome.runs, outcome.rows, os.path.join(output, "comparison.png"), what)


def _integer(value: Optional[float]) -> str:
    return "" if value is None else f"{int(value):,}"


def _number(value: Optional[float], digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def plot(runs: List[Dict[str, Any]], rows: List[Dict[str, Any]], path: str, what: str) -> None:
    """Accuracy against training time: one point per method (its means), bars for the spread
    over seeds in both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for row in rows:
        times = [r["train_seconds"] for r in runs if r["method"] == row["method"] and r["train_seconds"] is not None]
        if not times:
            continue
        time_mean, time_std = mean_std(times)
        axes.errorbar(time_mean, 100 * row["accuracy_mean"], xerr=time_std, yerr=100 * row["accuracy_std"],
                      marker="o", capsize=3, label=row["method"])
        axes.annotate(row["method"], (time_mean, 100 * row["accuracy_mean"]), textcoords="offset points",
                      xytext=(5, 5), fontsize=8)
    axes.set_xlabel("training time (s)")
    axes.set_ylabel(f"accuracy (%): {what.strip('`')}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120, bbox_inches="tight")  # annotations near the edge are not clipped
    plt.close(figure)
