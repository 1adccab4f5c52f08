import logging
import time
from typing import Any, Dict, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.training.callbacks.callback import TrainerCallback

from allennlp_lpt.training.callbacks import end_after_this_epoch

logger = logging.getLogger(__name__)


def build_pruner(spec: Optional[Dict[str, Any]], *, key: str) -> Any:
    """
    The Optuna pruner that `spec` names: `{"type": "MedianPruner", ...its keyword arguments}`
    with the name of any class in `optuna.pruners` (None: `MedianPruner()`, Optuna's defaults).
    An unknown name or argument is a ConfigurationError naming `key`.
    """
    import optuna

    spec = dict(spec or {"type": "MedianPruner"})
    name = spec.pop("type", None)
    known = sorted(n for n in dir(optuna.pruners) if n.endswith("Pruner") and n != "BasePruner")
    if name not in known:
        raise ConfigurationError(f"{key}: type {name!r} is not an Optuna pruner; choose from {', '.join(known)}.")
    try:
        return getattr(optuna.pruners, name)(**spec)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{key}: {name}({spec}) is refused by Optuna: {error}") from None


# Processes started together on a new database each create its tables; all but one then fail
# on what the first wrote (alembic's version row, a table that exists) and open it on a retry.
SCHEMA_RACE_ATTEMPTS = 5


def _lost_schema_race(error: Exception) -> bool:
    text = str(error)
    return type(error).__name__ == "IntegrityError" or "already exists" in text


def open_storage(url: str, *, key: str, heartbeat_interval: Optional[int] = None) -> Any:
    """
    Optuna's storage at `url` (any database URL SQLAlchemy takes: `sqlite:///PATH`,
    `postgresql://USER@HOST/DB`, `mysql+pymysql://...`), its tables created where missing.
    With `heartbeat_interval`, a trial whose process stops recording heartbeats for a few
    intervals is failed by the next process that looks (`optuna.storages.fail_stale_trials`).
    A URL that cannot be opened is a ConfigurationError naming `key`.
    """
    import optuna

    engine_kwargs = {}
    if url.startswith("sqlite"):
        # Several processes write one SQLite file: wait for its lock rather than fail at once.
        engine_kwargs = {"connect_args": {"timeout": 120}}
    grace = None if heartbeat_interval is None else 4 * heartbeat_interval
    for attempt in range(1, SCHEMA_RACE_ATTEMPTS + 1):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                              heartbeat_interval=heartbeat_interval, grace_period=grace)
        except Exception as error:  # SQLAlchemy's errors: bad URL, missing driver, server not there
            if _lost_schema_race(error) and attempt < SCHEMA_RACE_ATTEMPTS:
                time.sleep(0.5 * attempt)
                continue
            raise ConfigurationError(
                f"{key} {url!r}: Optuna cannot open this storage ({type(error).__name__}: {error}). Give a "
                f"database URL that is reachable from here, e.g. sqlite:///OUT/study.db or "
                f"postgresql://USER:PASSWORD@HOST:5432/DB (the psycopg2 package must be installed for "
                f"PostgreSQL)."
            ) from None
    raise AssertionError("unreachable")


@TrainerCallback.register("lpt_optuna_pruning")
class OptunaPruningCallback(TrainerCallback):
    """
    Reports each epoch's validation metric to a trial of an Optuna study and, when the study's
    pruner says the trial is hopeless, ends training after that epoch: AllenNLP then restores
    the best checkpoint, archives and tests it as after any run, and `metrics.json` gets
    `pruned_at_epoch`. The run is an `allennlp train` child of `allennlp lpt-compare --trials`,
    so the trial is found again from the storage, the study's name and the trial's number.
    Optuna is imported when the callback is built, never by `import allennlp_lpt`.

    Registered as a `TrainerCallback` with name "lpt_optuna_pruning".

    # Parameters

    storage : `str`
        The study's database URL (`sqlite:///...`, `postgresql://...`).
    study_name : `str`
        The study.
    trial_number : `int`
        The trial's number in the study (`trial.number`).
    metric : `str`
        The validation metric reported, without `validation_` and without a sign (`accuracy`);
        the study's direction says whether higher is better.
    pruner : `Dict[str, Any]`, optional (default = `{"type": "MedianPruner"}`)
        The pruner: a class of `optuna.pruners` by name, with its keyword arguments.
    """

    def __init__(
        self,
        serialization_dir: str,
        storage: str,
        study_name: str,
        trial_number: int,
        metric: str,
        pruner: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(serialization_dir)
        import optuna

        key = "lpt_optuna_pruning"
        opened = open_storage(storage, key=f"{key}.storage")
        try:
            study_id = opened.get_study_id_from_name(study_name)
            trial_id = opened.get_trial_id_from_study_id_trial_number(study_id, trial_number)
        except KeyError as error:
            raise ConfigurationError(f"{key}: {error}; the study or trial is not in {storage!r}.") from None
        study = optuna.load_study(study_name=study_name, storage=opened,
                                  pruner=build_pruner(pruner, key=f"{key}.pruner"))
        self.trial = optuna.trial.Trial(study, trial_id)
        self.metric = metric
        self.pruned_at: Optional[int] = None

    def on_epoch(self, trainer: Any, metrics: Dict[str, Any], epoch: int, is_primary: bool = True,
                 **kwargs: Any) -> None:
        if not is_primary:
            return
        value = metrics.get(f"validation_{self.metric}")
        if value is None:
            raise ConfigurationError(
                f"lpt_optuna_pruning: no validation_{self.metric} after epoch {epoch}; the trainer's "
                f"validation_metric must be one the model reports on the validation data."
            )
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            metrics["pruned_at_epoch"] = epoch
            end_after_this_epoch(trainer)
            logger.info("lpt_optuna_pruning: trial %d pruned after epoch %d (validation_%s %.4f).",
                        self.trial.number, epoch, self.metric, float(value))
