"""
What an `allennlp` command logs with this package loaded: what a user acts on, not AllenNLP's
inventory of the model.

AllenNLP 2.10 logs at INFO, on every run, a few hundred lines before training starts: every
config value it reads, defaults included (the config itself is in `config.json`); every
parameter a model's `initializer` leaves alone, which for late prompt is the whole pretrained
backbone listed as "using their default initialization" (it reads as if the backbone were
random); every frozen and every trainable parameter by name; the optimizer's groups name by name;
the first training and validation batch as tensors; and, when an archive is loaded, its temporary
folders. `allennlp predict` printed some 180 lines for one prediction.

`install` demotes exactly those records to DEBUG: a handler at INFO (AllenNLP's default) drops
them, and `ALLENNLP_LOG_LEVEL=DEBUG allennlp ...` (AllenNLP's own switch, which also sets what
`out.log` keeps) shows them again, marked DEBUG. Warnings and errors are never demoted, with one
exception: AllenNLP's warning that an optimizer group's regex matches no trainable parameter,
for the no-weight-decay regex the shipped configs use (`NO_DECAY_REGEX`), which by design
matches only where biases or norm weights train (PEFT's prompt tuning or LoRA train neither).
A regex of one's own that matches nothing still warns.

Each record is recognized by its logger, the function that logs it and its message template,
those of the pinned AllenNLP 2.10.1; a record of another version that does not match is left as
it is.

transformers 5 also draws a "Loading weights" progress bar each time a model is loaded (twice
for one `allennlp predict`: the archive's model, then its backbone's weights); `install` hides
that one bar, except at `ALLENNLP_LOG_LEVEL=DEBUG`. Download bars are left alone.

Global: the records come from AllenNLP's own code (config parsing, model constructors, the
trainer's constructor and its default console callback, archive loading), where no component
of this package runs, and a logger's filters are process-wide by nature.
"""
import logging
from typing import Dict, List, Optional, Tuple

# The no-weight-decay group of training_configs/common/lpt.libsonnet's `optimizer(...)`: biases
# and the norm weights of every family (BERT, RoBERTa: LayerNorm; Llama, Qwen: input_layernorm,
# q_norm, norm; ModernBERT: attn_norm, final_norm; GPT-2: ln_1, ln_2, ln_f).
# tests/training/test_logs.py checks that the two agree.
NO_DECAY_REGEX = r"bias|[Nn]orm\.weight|ln_.*\.weight"

# (logger, function, message templates it logs; None: every INFO record of that logger).
_RULES: Tuple[Tuple[str, Optional[str], Optional[Tuple[str, ...]]], ...] = (
    # Every config value read, defaults included.
    ("allennlp.common.params", None, None),
    # The parameters no initializer regex matched: the whole frozen backbone.
    ("allennlp.nn.initializers", "__call__",
     ("Initializing parameters", "Done initializing parameters", "   %s")),
    # Every frozen and trainable parameter by name.
    ("allennlp.common.util", "log_frozen_and_tunable_parameter_names", None),
    # The groups name by name and a trainable count that lpt_parameter_counts gives with the total.
    ("allennlp.training.optimizers", "make_parameter_groups",
     ("Done constructing parameter groups", "Group %s", "Number of trainable parameters",
      "Disabling gradient for the following parameters")),
    # The first training and validation batch as tensors.
    ("allennlp.training.callbacks.console_logger", "on_batch", None),
    ("allennlp.training.callbacks.console_logger", "_log_fields", None),
    # An archive's temporary folders.
    ("allennlp.models.archival", "load_archive", ("removing temporary unarchived model dir",)),
    ("allennlp.models.archival", "extracted_archive",
     ("extracting archive file", "removing temporary unarchived model dir")),
    ("allennlp.data.vocabulary", "from_files", ("Loading token dictionary from",)),
)

_UNMATCHED_GROUP = "When constructing parameter groups, %s does not match any parameter name"


class DemoteToDebug(logging.Filter):
    """
    A filter for one logger that lowers the records it recognizes to DEBUG: they pass where the
    logger is enabled for DEBUG (`ALLENNLP_LOG_LEVEL=DEBUG`), marked DEBUG, and are dropped
    elsewhere, as records logged at DEBUG would be.

    # Parameters

    rules : `Tuple[Tuple[Optional[str], Optional[Tuple[str, ...]]], ...]`
        (function name, message-template prefixes) pairs; None matches any.
    """

    def __init__(self, rules: Tuple[Tuple[Optional[str], Optional[Tuple[str, ...]]], ...]) -> None:
        super().__init__()
        self.rules = rules

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._demoted(record):
            return True
        # As if AllenNLP had logged it at DEBUG: the logger's own level decides (a handler at
        # NOTSET, such as the one `allennlp predict` logs through, would pass anything).
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno = logging.DEBUG
        record.levelname = logging.getLevelName(logging.DEBUG)
        return True

    def _demoted(self, record: logging.LogRecord) -> bool:
        template = record.msg if isinstance(record.msg, str) else ""
        if record.levelno == logging.WARNING:
            return template == _UNMATCHED_GROUP and record.args == (NO_DECAY_REGEX,)
        if record.levelno != logging.INFO:
            return False
        for function, prefixes in self.rules:
            if function is not None and record.funcName != function:
                continue
            if prefixes is None or template.startswith(prefixes):
                return True
        return False


LOADING_BAR = "Loading weights"


def _quiet_loading_bar(factory, args, kwargs, previous=None):  # type: ignore[no-untyped-def]
    """transformers' tqdm hook: the weight-loading bar disabled unless the root logger shows
    DEBUG; every other bar as `previous` (or transformers) makes it."""
    if kwargs.get("desc") == LOADING_BAR and not logging.getLogger().isEnabledFor(logging.DEBUG):
        kwargs = {**kwargs, "disable": True}
    return previous(factory, args, kwargs) if previous is not None else factory(*args, **kwargs)


def _install_loading_bar_hook() -> None:
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    if not hasattr(hf_logging, "set_tqdm_hook"):  # transformers 4.x draws no such bar
        return
    current = getattr(hf_logging, "_tqdm_hook", None)
    if getattr(current, "lpt_quiet_loading_bar", False):
        return  # installed already

    def hook(factory, args, kwargs):  # type: ignore[no-untyped-def]
        return _quiet_loading_bar(factory, args, kwargs, current)

    hook.lpt_quiet_loading_bar = True  # type: ignore[attr-defined]
    hf_logging.set_tqdm_hook(hook)


def install() -> None:
    """Adds the filters to AllenNLP's loggers and hides transformers' weight-loading bar
    (idempotent)."""
    _install_loading_bar_hook()
    by_logger: Dict[str, List[Tuple[Optional[str], Optional[Tuple[str, ...]]]]] = {}
    for name, function, prefixes in _RULES:
        by_logger.setdefault(name, []).append((function, prefixes))
    for name, rules in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DemoteToDebug) for f in logger.filters):
            logger.addFilter(DemoteToDebug(tuple(rules)))
