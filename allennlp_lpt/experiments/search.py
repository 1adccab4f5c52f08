"""
The search before the comparison (`allennlp lpt-compare --trials N`): for each method, an Optuna
study of N trials, each a real `allennlp train` of the method's swapped config with sampled
values, scored on the validation set with the first seed and pruned epoch by epoch
(`lpt_optuna_pruning`); then each method's best values trained with every seed by `compare`.

One study per method, `NAME/METHOD`, in a database (an SQLite file in OUT unless `--storage`),
so several processes, on one machine or several, can run the same command on one storage: each
claims trials until N are claimed (a trial asked past the N-th is closed at once, unrun), waits
for the others' trials, then trains the final runs into its own OUT.
"""
import contextlib
import csv
import json
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from allennlp.common.checks import ConfigurationError

from allennlp_lpt.experiments.compare import Comparison, compare, method_config, method_configs
from allennlp_lpt.experiments.configs import difference, expand_key, load_config, paths_of, validation_metric
from allennlp_lpt.experiments.methods import method_class
from allennlp_lpt.experiments.runs import lean_overrides, owning_output
from allennlp_lpt.experiments.sweep import Run, train_run
from allennlp_lpt.training.optuna_pruning import build_pruner, open_storage

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30
WAIT_SECONDS = 5.0
RANGE_FIELDS = {"low", "high", "log", "step"}
LR = "lr"


@dataclass
class Dimension:
    """One searched key: `lr` (the method's learning rate), one of the method's options (`r`),
    or a dotted key of the method's config (`*.name` for every `name`), with its distribution."""

    key: str
    spec: Dict[str, Any]

    def distribution(self) -> Any:
        import optuna

        if "choices" in self.spec:
            return optuna.distributions.CategoricalDistribution(self.spec["choices"])
        low, high, log, step = self.spec["low"], self.spec["high"], self.spec.get("log", False), self.spec.get("step")
        if all(isinstance(v, int) for v in (low, high)) and isinstance(step, (int, type(None))):
            return optuna.distributions.IntDistribution(low, high, log=log, step=step or 1)
        return optuna.distributions.FloatDistribution(low, high, log=log, step=step)


def _check_spec(spec: Any, where: str) -> Dict[str, Any]:
    """A key's distribution: `{"low", "high"[, "log"][, "step"]}` or `{"choices": [...]}`."""
    fix = 'give {"low": L, "high": H} (with "log": true for a log-uniform draw, "step" for a grid) or {"choices": [...]}'
    if not isinstance(spec, dict):
        raise ConfigurationError(f"{where}: {json.dumps(spec)} is not a range; {fix}.")
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"} or not isinstance(choices, list) or not choices \
                or not all(isinstance(c, (str, int, float, bool)) or c is None for c in choices):
            raise ConfigurationError(f"{where}: {json.dumps(spec)}: choices must be a non-empty list of "
                                     f"numbers, strings, booleans or null, alone; {fix}.")
        return spec
    unknown = sorted(set(spec) - RANGE_FIELDS)
    missing = sorted({"low", "high"} - set(spec))
    numbers = [spec.get(k) for k in ("low", "high")]
    if unknown or missing or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        raise ConfigurationError(f"{where}: {json.dumps(spec)} is not a range; {fix}.")
    low, high = numbers
    if not low < high:
        raise ConfigurationError(f"{where}: the range {low} .. {high} is empty; give low below high.")
    if spec.get("log") and low <= 0:
        raise ConfigurationError(f"{where}: a log range needs low above 0, not {low}.")
    step = spec.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0
                             or spec.get("log")):
        raise ConfigurationError(f"{where}: step {step!r}: give a number above 0, and no log with a step.")
    return spec


def search_spaces(
    base: Dict[str, Any], methods: Sequence[str], space: Dict[str, Any], *, source: str
) -> Dict[str, List[Dimension]]:
    """
    Each method's dimensions: the learning rate, log-uniform over the method's `lr_range`
    (`allennlp lpt-methods` prints them), then `space`'s keys (those under a method's name for
    that method alone, the others for every method; a key given for `lr` replaces the default).
    A key that is not `lr`, one of the method's options nor a key of its swapped config, or a
    bad range, is a ConfigurationError naming `--search-space`.
    """
    shared = {k: v for k, v in space.items() if k not in methods}
    for method in [k for k in space if k in methods]:
        if not isinstance(space[method], dict):
            raise ConfigurationError(f"--search-space: {method!r} must map keys to ranges.")
    spaces = {}
    for method in methods:
        cls = method_class(method)
        low, high = cls.lr_range
        keys = {LR: {"low": low, "high": high, "log": True}, **shared, **space.get(method, {})}
        options = sorted(cls.options()) + [p.name for p in cls._parameters() if p.name not in cls.options()]
        config = method_config(base, method, None, None, source=source)
        dimensions = []
        for key, spec in keys.items():
            where = f"--search-space {key!r} ({method})"
            if key != LR and key not in options:
                _check_config_key(config, key, where, options)
            dimensions.append(Dimension(key, _check_spec(spec, where)))
        spaces[method] = dimensions
    return spaces


def _check_config_key(config: Dict[str, Any], key: str, where: str, options: List[str]) -> None:
    takes = f"lr, its options ({', '.join(options)})" if options else "lr (it has no options)"
    found = any(paths_of(config, key[2:])) if key.startswith("*.") else _has_path(config, key.split("."))
    if not found:
        name = f"{key[2:]!r} anywhere" if key.startswith("*.") else repr(key)
        raise ConfigurationError(
            f"{where}: the method's config has no key {name}; a method takes {takes}, a dotted key "
            f"of its config (`--configs-only` writes it) or `*.name` for every `name` in it. To search "
            f"a key the config lacks, set it with -o first."
        )


def _has_path(node: Any, parts: List[str]) -> bool:
    """Whether the dotted path `parts` leads to a value of `node` (list items by index)."""
    for part in parts:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


def split_values(config: Dict[str, Any], method: str, params: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """A trial's values as (method options with `lr`, dotted overrides of the swapped config)."""
    options_taken = {p.name for p in method_class(method)._parameters()}
    options = {k: v for k, v in params.items() if k == LR or k in options_taken}
    overrides: Dict[str, Any] = {}
    for key, value in params.items():
        if key not in options:
            overrides.update({path: value for path in expand_key(config, key, flag="--search-space")})
    return options, overrides


def direction(config: Dict[str, Any]) -> str:
    """`maximize` for a `+metric` validation metric, `minimize` for `-metric` (AllenNLP's signs)."""
    metric = config.get("trainer", {}).get("validation_metric", "-loss")
    metric = metric[0] if isinstance(metric, list) else metric
    return "minimize" if metric.startswith("-") else "maximize"


@dataclass
class SearchPlan:
    """What `plan_search` checked, before anything trains."""

    base: Dict[str, Any]
    spaces: Dict[str, List[Dimension]]
    storage_url: str
    storage: Any
    study_name: str
    pruner: Dict[str, Any]
    metric: str
    direction: str


def check_trials(trials: Any) -> None:
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigurationError(f"--trials {trials!r}: give the number of trials per method, 1 or more "
                                 f"(0, the default, skips the search).")


def plan_search(
    config_path: str,
    output: str,
    *,
    methods: Sequence[str],
    trials: int,
    search_space: Optional[Dict[str, Any]],
    storage: Optional[str],
    study_name: Optional[str],
    pruner: Optional[Dict[str, Any]],
    overrides: Dict[str, Any],
) -> SearchPlan:
    """Checks every flag of the search and opens the storage; any error is a ConfigurationError
    naming its flag, raised before any training."""
    check_trials(trials)
    base = load_config(config_path, overrides)
    spaces = search_spaces(base, methods, dict(search_space or {}), source=config_path)
    pruner_spec = dict(pruner or {"type": "MedianPruner"})
    build_pruner(dict(pruner_spec), key="--pruner")
    if study_name is not None and not study_name.strip():
        raise ConfigurationError("--study-name: give a name (default: OUT's folder name).")
    name = study_name or os.path.basename(os.path.abspath(output))
    os.makedirs(output, exist_ok=True)
    url = storage or f"sqlite:///{os.path.join(os.path.abspath(output), 'study.db')}"
    opened = open_storage(url, key="--storage", heartbeat_interval=HEARTBEAT_SECONDS)
    config = method_config(base, methods[0], None, None, source=config_path)
    return SearchPlan(base, spaces, url, opened, name, pruner_spec, validation_metric(config), direction(config))


def open_study(plan: SearchPlan, method: str, setup: Dict[str, Any]) -> Any:
    """The method's study (`NAME/METHOD`), created or loaded; one started with another config,
    search space or metric is a ConfigurationError naming `--study-name`."""
    import optuna

    name = f"{plan.study_name}/{method}"
    study = optuna.create_study(storage=plan.storage, study_name=name, direction=plan.direction, load_if_exists=True)
    saved = study.user_attrs.get("lpt_setup")
    if saved is None:
        study.set_user_attr("lpt_setup", setup)
    else:
        found = difference(saved, json.loads(json.dumps(setup)))
        if found is not None:
            raise ConfigurationError(
                f"--study-name {plan.study_name!r}: the study {name!r} in {plan.storage_url} was started with "
                f"another config, search space or metric ({found}); give another --study-name, or the flags "
                f"it was started with."
            )
    return study


@contextlib.contextmanager
def _optuna_as_used_here() -> Iterator[None]:
    """Optuna's warnings that do not apply here: heartbeats are recorded by `_Heartbeat` (with
    ask and tell, not `Study.optimize`), and the heartbeat API is marked experimental."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        yield


class _Heartbeat:
    """Records the trial's heartbeat while its run trains, so that if this process dies the
    other processes fail the trial (`fail_stale_trials`) instead of waiting for it forever."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(storage, trial_id), daemon=True)

    def _beat(self, storage: Any, trial_id: int) -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if self._stop.wait(HEARTBEAT_SECONDS):
                return

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def run_trials(plan: SearchPlan, method: str, study: Any, trials: int, output: str, seed: Optional[int],
               method_options: Dict[str, Any], time_budget: Optional[float], source: str,
               include_packages: Sequence[str], keep_all: bool = False) -> List[int]:
    """Claims and runs trials of `study` until `trials` are claimed (by this process or others);
    returns the numbers of those run here."""
    import optuna
    from optuna.trial import TrialState

    folder = os.path.join(output, "search", method)
    os.makedirs(os.path.join(folder, "logs"), exist_ok=True)
    distributions = {d.key: d.distribution() for d in plan.spaces[method]}
    study_id = plan.storage.get_study_id_from_name(study.study_name)
    ran = []
    while True:
        optuna.storages.fail_stale_trials(study)
        claimed = [t for t in study.get_trials(deepcopy=False) if t.number < trials and t.state != TrialState.WAITING]
        if len(claimed) >= trials:
            return ran
        trial = study.ask(distributions)
        if trial.number >= trials:  # another process claimed the last one meanwhile
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            return ran
        options, overrides = split_values(method_config(plan.base, method, None, None, source=source), method,
                                          trial.params)
        config = method_config(plan.base, method, {**method_options, **options}, time_budget,
                               source=source, overrides=overrides)
        # A trial is scored on the validation set alone: its test score would cost a pass and
        # tempt selection on test.
        config["evaluate_on_test"] = False
        config.setdefault("trainer", {}).setdefault("callbacks", []).append({
            "type": "lpt_optuna_pruning", "storage": plan.storage_url, "study_name": study.study_name,
            "trial_number": trial.number, "metric": plan.metric, "pruner": plan.pruner,
        })
        seeds = {} if seed is None else {"random_seed": seed, "numpy_seed": seed, "pytorch_seed": seed}
        run = Run(f"trial={trial.number}", dict(trial.params), seed, None,
                  {**({} if keep_all else lean_overrides(config)), **seeds})
        path = os.path.join(folder, "configs", f"{run.name}.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            json.dump(config, handle, indent=2)
        trial.set_user_attr("run", os.path.abspath(os.path.join(folder, run.name)))
        trial_id = plan.storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        from tqdm import tqdm

        tqdm.write(f"lpt-compare: {method} trial {trial.number + 1}/{trials}: {json.dumps(trial.params)}")
        with _Heartbeat(plan.storage, trial_id):
            problem, log = train_run(path, run, folder, include_packages)
        metrics_file = os.path.join(folder, run.name, "metrics.json")
        if problem is not None or not os.path.isfile(metrics_file):
            tqdm.write(f"lpt-compare: {method} trial {trial.number} failed ({problem}); its log: {log}")
            study.tell(trial, state=TrialState.FAIL)
        else:
            with open(metrics_file) as handle:
                metrics = json.load(handle)
            if "pruned_at_epoch" in metrics:
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, metrics[f"best_validation_{plan.metric}"])
        ran.append(trial.number)


def wait_for_trials(study: Any) -> List[Any]:
    """The study's trials (not those closed unrun as surplus) once none is running, another
    process's included."""
    import optuna
    from optuna.trial import TrialState

    announced = False
    while True:
        optuna.storages.fail_stale_trials(study)
        mine = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
        if not any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in mine):
            return mine
        if not announced:
            logger.info("Waiting for %s's running trials (other processes').", study.study_name)
            announced = True
        time.sleep(WAIT_SECONDS)


def search_and_compare(
    config_path: str,
    output: str,
    *,
    methods: Sequence[str],
    trials: int,
    seeds: Sequence[int] = (),
    search_space: Optional[Dict[str, Any]] = None,
    storage: Optional[str] = None,
    study_name: Optional[str] = None,
    pruner: Optional[Dict[str, Any]] = None,
    overrides: Optional[Dict[str, Any]] = None,
    method_options: Optional[Dict[str, Dict[str, Any]]] = None,
    time_budget: Optional[float] = None,
    include_packages: Sequence[str] = ("allennlp_lpt",),
    rerun_changed: bool = False,
    keep_all: bool = False,
) -> Comparison:
    """
    Searches each method (`trials` trials, the first seed, scored on the validation set), writes
    `OUT/search.csv` and `OUT/search.png`, then trains each method's best values with every seed
    (`compare`). A method none of whose trials completed is reported and left out.
    """
    from tqdm import tqdm

    check_trials(trials)
    overrides, method_options = dict(overrides or {}), dict(method_options or {})
    # The flags `compare` checks (methods, method options, time budget), before any training.
    method_configs(config_path, methods, output, overrides, method_options, time_budget)
    seed = seeds[0] if seeds else None
    with _optuna_as_used_here():
        plan = plan_search(config_path, output, methods=methods, trials=trials, search_space=search_space,
                           storage=storage, study_name=study_name, pruner=pruner, overrides=overrides)
        studies = {}
        for method in methods:
            setup = {"config": method_config(plan.base, method, method_options.get(method), time_budget,
                                             source=config_path),
                     "space": {d.key: d.spec for d in plan.spaces[method]}, "seed": seed, "pruner": plan.pruner}
            studies[method] = open_study(plan, method, setup)
        # Shared: processes working one study may share OUT too (each trial under its run's
        # lock); a plain lpt-compare or lpt-sweep on OUT is refused meanwhile.
        with owning_output(output, command="lpt-compare --trials", shared=True):
            for method in methods:
                run_trials(plan, method, studies[method], trials, output, seed, method_options.get(method, {}),
                           time_budget, config_path, include_packages, keep_all)
            finished = {method: wait_for_trials(studies[method]) for method in methods}
    write_search(finished, plan, output)
    best_options, best_overrides, lost = {}, {}, []
    for method in methods:
        best = best_trial(finished[method], plan.direction)
        if best is None:
            states = sorted({t.state.name.lower() for t in finished[method]})
            lost.append(method)
            tqdm.write(f"lpt-compare: no trial of {method} completed ({', '.join(states)}); it is left out of "
                       f"the comparison. See {os.path.join(output, 'search.csv')}.")
            continue
        tqdm.write(f"lpt-compare: {method}'s best trial: {best.number} ({plan.metric} {best.value:.4f}): "
                   f"{json.dumps(best.params)}")
        options, dotted = split_values(method_config(plan.base, method, None, None, source=config_path), method,
                                       best.params)
        best_options[method] = {**method_options.get(method, {}), **options}
        best_overrides[method] = dotted
    kept = [m for m in methods if m not in lost]
    outcome = Comparison()
    if kept:
        outcome = compare(config_path, output, methods=kept, seeds=seeds, overrides=overrides,
                          method_options=best_options, time_budget=time_budget, include_packages=include_packages,
                          rerun_changed=rerun_changed, method_overrides=best_overrides, keep_all=keep_all)
    outcome.failed += [(f"{method} (search)", os.path.join(output, "search.csv")) for method in lost]
    return outcome


def best_trial(trials: List[Any], direction_name: str) -> Optional[Any]:
    """The completed trial with the best value (the lowest number among equals), or None."""
    from optuna.trial import TrialState

    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if not done:
        return None
    sign = -1.0 if direction_name == "maximize" else 1.0
    return min(done, key=lambda t: (sign * t.value, t.number))


def write_search(finished: Dict[str, List[Any]], plan: SearchPlan, output: str) -> None:
    """`OUT/search.csv`: every trial (method, trial number, state, its values as JSON and one
    column each, the validation metric: the final value of a completed trial, the last
    reported one of a pruned trial; seconds); `OUT/search.png`: the metric against the
    learning rate."""
    keys = sorted({key for trials in finished.values() for t in trials for key in t.params})
    dev = f"dev_{plan.metric}"
    columns = ["method", "trial", "state", *keys, dev, "epochs_reported", "seconds", "params", "run"]
    rows = []
    for method, trials in finished.items():
        for t in trials:
            value = t.value if t.value is not None else (
                t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
            seconds = t.duration.total_seconds() if t.duration is not None else None
            rows.append({"method": method, "trial": t.number, "state": t.state.name, **t.params, dev: value,
                         "epochs_reported": len(t.intermediate_values), "seconds": seconds,
                         "params": json.dumps(t.params, sort_keys=True), "run": t.user_attrs.get("run", "")})
    with open(os.path.join(output, "search.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows([{c: ("" if r.get(c) is None else r.get(c)) for c in columns} for r in rows])
    plot_search(rows, dev, os.path.join(output, "search.png"))


def plot_search(rows: List[Dict[str, Any]], dev: str, path: str) -> None:
    """Each method's validation metric against the learning rate (log axis): filled points for
    completed trials, open ones for pruned trials (their last reported value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for index, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
        color = f"C{index % 10}"
        for state, fill in (("COMPLETE", color), ("PRUNED", "none")):
            points = [(r[LR], r[dev]) for r in rows
                      if r["method"] == method and r["state"] == state and r.get(dev) is not None and LR in r]
            if points:
                xs, ys = zip(*points)
                axes.scatter(xs, ys, facecolors=fill, edgecolors=color,
                             label=method if state == "COMPLETE" else f"{method} (pruned)")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel(f"{dev} (validation set, first seed)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
