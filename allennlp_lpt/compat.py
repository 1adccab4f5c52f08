"""
Repairs of AllenNLP 2.10 defects that users of this package meet, and the checks that need a
whole model, installed once when the package is imported (by `--include-package allennlp_lpt`
or a plugins file). Each leaves AllenNLP's behaviour unchanged for valid input.

Whatever one of this package's components can check, it checks itself. These few patch AllenNLP
for the whole process instead, because the moment each needs lies in AllenNLP's own code, where
no component of this package runs; each says why ("Global:").

- A damaged model archive (a copy or download cut short) ends in a bare `EOFError` that does not
  name the archive, and leaves its half-extracted folder in the temp directory: AllenNLP's
  `extracted_archive` creates the folder before extracting and forgets it when extraction fails.
  `extracted_archive` below removes the folder and raises a ConfigurationError naming the file
  and what is wrong (`archives.extract_archive`): damaged, a member that tarfile's `data` filter
  refuses (a link leading outside the archive: not damage), or weights that PyTorch refuses to
  unpickle (it names the pickled class; PyTorch's own text suggests loading it anyway). A
  missing archive, a bare `FileNotFoundError` from `cached_path`, is one naming the path.
  Global: `load_archive` opens an archive before its config, which names the components, is read.
- `allennlp train`: a `trainer.num_epochs` or a data loader's `batch_size` below 1 (or not an
  integer) is a ConfigurationError naming the key before anything is written (AllenNLP failed
  after training, on a missing `best.th`, or in its own words without the key). `--recover` on
  a finished run (its `metrics.json`, written after the last epoch and the test evaluation, is
  there) trains nothing and says so: AllenNLP replayed the epochs and rewrote `metrics.json`
  without the training duration and the validation and test metrics, and the archive. Where
  the archive is missing (archiving failed), it writes only the archive.
  Global: the trainer and data loaders are AllenNLP's, and only its train command sees the run
  folder and the flags.
- `archive_model` writes `model.tar.gz` in place, so a disk that fills while archiving left a
  truncated archive that looks finished. It now writes a temporary file beside it, renames it
  when complete, and removes it on failure, with an error naming the archive and the fix.
  Global: `allennlp train` archives through AllenNLP's function.
- A notice that no user can act on, raised by AllenNLP's own code on every epoch: its trainer's
  deprecated `torch.cuda.amp.autocast(...)`.
  Global: a warnings filter is process-wide by nature; this matches that message only, where
  AllenNLP's code raises it.
- What transformers 5 and huggingface_hub 1 changed under AllenNLP is repaired by the top-level
  module `allennlp_repair` (it must run before `allennlp` imports its commands), not here.
- The readers' `cache_keys` adds `row_keys` to each batch's text field, which
  `BasicTextFieldEmbedder` hands to its token embedder whatever it is: to any but
  `late_prompt_transformer` (or `peft_transformer`, which explains itself) that was a bare
  `TypeError` inside AllenNLP. The text field embedder now refuses such a batch first, with a
  ConfigurationError naming `dataset_reader.cache_keys`, the token embedder and the fix.
  Global: with `basic_classifier` and AllenNLP's token embedders no code of this package lies
  between the reader's batch and the embedder it fails in, and the reader never meets the model.
- `allennlp predict` hands a predictor one line at a time, without the file or line number, and
  writes each batch's predictions as it goes. Before it reads the first line, `_PredictManager`
  now lets a predictor with a `check_input_file(path)` method (`lpt_classifier`) check the whole
  file, so a bad line is named by file and line and nothing is predicted. A missing input file
  is a ConfigurationError naming it, before the output file is opened (AllenNLP's own
  `FileNotFoundError` came after it had created or emptied it).
  Global: only AllenNLP's predict command knows the input file (other predictors are untouched).
- `allennlp evaluate --predictions-output-file` writes one JSON line per batch, in the data
  loader's order (the shipped configs' bucket sampler sorts by length), holding the batch's
  padded token ids. Where the data loader's reader is `lpt_tsv`/`lpt_task` and the evaluator
  writes them as AllenNLP's `simple` one does (its default serializer; `lpt_confusion_matrix`
  included), the package's `lpt` evaluator (`predictors.evaluator.FileOrderEvaluator`) writes
  the predictions instead: one line per row, in file order, as `allennlp predict
  --use-dataset-reader` writes them; the metrics are the same.
  Global: evaluate takes its evaluator from the archive's config, and archives trained before
  (and configs that name none) name none or AllenNLP's.
- AllenNLP's own `pretrained_transformer` embedder, tokenizer and indexer load through
  `cached_transformers`, which knows only folders and the hub: the hub name of a model that a
  package installs offline (all-MiniLM-L6-v2, `core.family.PACKAGED_MODELS`) now loads from
  that package there too, as it does for this package's components (full fine-tuning and BitFit
  beside late prompt use that embedder).
  Global: AllenNLP's components call it with the config's name; none of ours is on that path.
- The checks of a whole model, when it is built, before its `initializer` writes anything:
  its late-prompt halves must pair up (`modules.pairing.check_model`: a mispaired
  `basic_classifier` fails at construction, naming both config keys), and no initializer regex
  may match a frozen pretrained weight of a late-prompt backbone, which it would overwrite in
  place for every model of that backbone in the process (they share one copy).
  Global: AllenNLP's models (`basic_classifier`, ...) apply their `initializer` to themselves
  at the end of their constructors, the one point where AllenNLP hands anything a whole model,
  and the halves of a `basic_classifier` are built apart and never told of each other.
- AllenNLP's inventory of the model, logged at INFO on every run (every config value, the frozen
  backbone by name as if at "default initialization", the optimizer's groups, the first batch's
  tensors), is demoted to DEBUG by `allennlp_lpt/logs.py` (`ALLENNLP_LOG_LEVEL=DEBUG` shows it).
  Global: AllenNLP logs it from its own code, and a logger's filters are process-wide by nature.
"""
import contextlib
import functools
import inspect
import logging
import os
import re
import shutil
import tempfile
import warnings
from typing import Any, Callable, Iterator, Optional

import torch
from allennlp.common import cached_transformers
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import TextFieldTensors
from allennlp.evaluation.evaluator import SimpleEvaluator
from allennlp.models import Model, archival
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.nn.initializers import InitializerApplicator

from allennlp_lpt.archives import (
    archive_write_failed,
    extract_archive,
    missing_archive_message,
    written_atomically,
)
from allennlp_lpt.core.cache import RowKeys
from allennlp_lpt.core.pretrained import SharedParameter
from allennlp_lpt.modules import pairing
from allennlp_lpt.option_types import option_problem

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def extracted_archive(resolved_archive_file: str, cleanup: bool = True) -> Iterator[str]:
    """AllenNLP's `extracted_archive`, which names the archive and what is wrong with it
    (`archives.extract_archive`) and leaves nothing behind when extraction fails."""
    tempdir = tempfile.mkdtemp()
    try:
        extract_archive(resolved_archive_file, tempdir)
    except BaseException:
        shutil.rmtree(tempdir, ignore_errors=True)
        raise
    try:
        yield tempdir
    finally:
        if cleanup:
            shutil.rmtree(tempdir, ignore_errors=True)


def _takes_row_keys(embedder: torch.nn.Module) -> bool:
    parameters = inspect.signature(embedder.forward).parameters.values()
    return any(p.name == "row_keys" or p.kind is p.VAR_KEYWORD for p in parameters)


def _refusing_row_keys(forward: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(forward)
    def wrapped(
        self: BasicTextFieldEmbedder, text_field_input: TextFieldTensors, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        for key, tensors in text_field_input.items():
            if not isinstance(tensors.get("row_keys"), RowKeys):  # only our readers' keys
                continue
            # AllenNLP's own name for the token embedder of `key` (see its forward).
            embedder = getattr(self, f"token_embedder_{key}", None)
            if embedder is not None and not _takes_row_keys(embedder):
                raise ConfigurationError(
                    f"dataset_reader.cache_keys is true, which gives each batch the lower-layer "
                    f"cache keys that only a late_prompt_transformer embedder takes, but this "
                    f"model's token embedder does not (token_embedders.{key} is "
                    f"{pairing.registered_name(embedder)}). Remove cache_keys from the dataset "
                    f"reader(s)."
                )
        return forward(self, text_field_input, *args, **kwargs)

    return wrapped


def _checking_the_input_first(run: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(run)
    def wrapped(self: Any) -> Any:
        check = getattr(self._predictor, "check_input_file", None)
        # JSON lines from a file (not stdin, not read by a dataset reader).
        if check is not None and self._dataset_reader is None and self._input_file != "-":
            try:
                check(self._input_file)
            except BaseException:
                if self._output_file is not None:
                    self._output_file.close()
                raise
        return run(self)

    return wrapped


def _naming_a_missing_input_file(init: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(init)
    def wrapped(self: Any, predictor: Any, input_file: str, output_file: Optional[str], *args: Any, **kwargs: Any) -> None:
        # Before AllenNLP opens (and so creates or empties) the output file.
        if input_file != "-" and "://" not in input_file and not os.path.exists(input_file):
            raise ConfigurationError(
                f"{input_file!r}: no such input file (relative paths are read from {os.getcwd()}). "
                f"Give allennlp predict the path of a JSON-lines file (one {{\"sentence\": ...}} "
                f"object per line), or of a data file with --use-dataset-reader."
            )
        init(self, predictor, input_file, output_file, *args, **kwargs)

    return wrapped


def _writing_predictions_in_file_order(call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def wrapped(self: Any, model: Model, data_loader: Any, *args: Any, **kwargs: Any) -> Any:
        from allennlp.evaluation.serializers.serializers import SimpleSerializer

        from allennlp_lpt.data.dataset_readers import TsvClassificationReader
        from allennlp_lpt.predictors.evaluator import FileOrderEvaluator

        # evaluate's argument names, given by keyword or by position (batch_weight_key,
        # metrics_output_file, predictions_output_file).
        named = dict(zip(("batch_weight_key", "metrics_output_file", "predictions_output_file"), args), **kwargs)
        if (
            named.get("predictions_output_file") is not None
            # AllenNLP's own way of writing them (also reached through super() of a subclass,
            # e.g. lpt_confusion_matrix), not a serializer of the config's.
            and type(self.batch_serializer) is SimpleSerializer
            and isinstance(getattr(data_loader, "reader", None), TsvClassificationReader)
        ):
            evaluator = FileOrderEvaluator(cuda_device=self.cuda_device, postprocessor_fn_name=self.postprocessor_fn_name)
            return evaluator(model, data_loader, **named)
        return call(self, model, data_loader, *args, **kwargs)

    return wrapped


def _checking_the_whole_model(call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def wrapped(self: InitializerApplicator, module: torch.nn.Module) -> None:
        if isinstance(module, Model):  # a whole model, not a part that a model initializes
            pairing.check_model(module)
        _refuse_initializing_shared_weights(self, module)
        return call(self, module)

    return wrapped


def _refuse_initializing_shared_weights(
    applicator: InitializerApplicator, module: torch.nn.Module
) -> None:
    """Raises a ConfigurationError when one of `applicator`'s regexes matches a shared backbone
    weight of `module`. It reads the applicator's private fields, those of the pinned AllenNLP
    2.10.1: the class offers no other way to ask what it would initialize."""
    # An initializer writes in place: on a shared backbone weight it would change every
    # model of that backbone in the process (and discard the pretrained values).
    for name, parameter in module.named_parameters():
        if not isinstance(parameter, SharedParameter):
            continue
        prevent = applicator._prevent_regex
        if prevent is not None and re.search(prevent, name):
            continue
        regex = next(
            (regex for regex, _ in applicator._initializers if re.search(regex, name)), None
        )
        if regex is not None:
            raise ConfigurationError(
                f"model.initializer: the regex {regex!r} matches {name}, a frozen pretrained "
                f"weight of {parameter.model_name!r} that every model of that backbone in "
                f"this process shares; initializing it would replace the pretrained values "
                f"for all of them. Make the regex match only what trains (e.g. "
                f"'_classification_layer.*'), or add the backbone to prevent_regexes."
            )


def _finding_packaged_models(load: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(load)
    def wrapped(model_name: str, *args: Any, **kwargs: Any) -> Any:
        # The hub name of a model that a package installs offline loads from that package.
        from allennlp_lpt.core.family import resolve_model_name

        return load(resolve_model_name(model_name), *args, **kwargs)

    return wrapped


def _naming_a_missing_archive(resolve: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(resolve)
    def wrapped(url_or_filename: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return resolve(url_or_filename, *args, **kwargs)
        except FileNotFoundError:
            raise ConfigurationError(missing_archive_message(str(url_or_filename))) from None

    return wrapped


# AllenNLP's options that must be 1 or more for a run to make sense: (key path, what they count).
_AT_LEAST_ONE = (
    (("trainer", "num_epochs"), "epochs (with 0 nothing trains and no model.tar.gz is written)"),
    (("data_loader", "batch_size"), "instances per batch"),
    (("data_loader", "batch_sampler", "batch_size"), "instances per batch"),
    (("validation_data_loader", "batch_size"), "instances per batch"),
    (("validation_data_loader", "batch_sampler", "batch_size"), "instances per batch"),
)


def check_training_options(params: Params) -> None:
    """Raises a ConfigurationError naming the key where the config's epoch count or a batch
    size is not a positive integer (AllenNLP fails on them late, in its own words, or not at
    all: 0 epochs end in an error about a missing best.th)."""
    config = params.as_dict(quiet=True)
    for path, what in _AT_LEAST_ONE:
        value: Any = config
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        key = ".".join(path)
        problem = option_problem(value, int, key, path[-1])
        if problem is None and value < 1:
            problem = f"{key}={value}: give 1 or more {what}."
        if problem is not None:
            raise ConfigurationError(problem)


def _finished_run(params: Params, serialization_dir: str, return_model: Optional[bool]) -> Any:
    """`allennlp train --recover` on a run that finished training (metrics.json is written
    after the last epoch and the test evaluation): nothing to resume. Archives it where its
    archive is missing (archiving failed, e.g. on a full disk), and otherwise changes nothing."""
    from allennlp.models.archival import load_archive
    from allennlp.training import util as training_util

    # The same config check as any --recover (it writes nothing).
    training_util.create_serialization_dir(params, serialization_dir, True, False)
    archive = os.path.join(serialization_dir, "model.tar.gz")
    if os.path.exists(archive):
        logger.warning(
            "%s holds a finished run (metrics.json, model.tar.gz): --recover has nothing to "
            "resume and changes nothing. To train again, give a new -s folder (or --force to "
            "replace this one).", serialization_dir,
        )
    else:
        logger.warning(
            "%s holds a finished run whose model.tar.gz was not written: --recover archives it "
            "now and trains nothing.", serialization_dir,
        )
        archival.archive_model(serialization_dir, include_in_archive=params.get("include_in_archive", None))
    # Only when asked for: the command line would load the whole model to discard it.
    return load_archive(archive).model if return_model else None


def _checking_the_run_first(train: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(train)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(train).bind(*args, **kwargs)
        bound.apply_defaults()
        params, serialization_dir = bound.arguments["params"], str(bound.arguments["serialization_dir"])
        check_training_options(params)
        finished = os.path.isfile(os.path.join(serialization_dir, "metrics.json"))
        if bound.arguments["recover"] and finished and not bound.arguments["force"]:
            return _finished_run(params, serialization_dir, bound.arguments["return_model"])
        return train(*args, **kwargs)

    return wrapped


def _archiving_atomically(archive: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(archive)
    def wrapped(
        serialization_dir: Any,
        weights: str = "best.th",
        archive_path: Any = None,
        include_in_archive: Optional[list] = None,
    ) -> str:
        path = os.path.join(serialization_dir, "model.tar.gz") if archive_path is None else str(archive_path)
        if os.path.isdir(path):
            path = os.path.join(path, "model.tar.gz")
        try:
            with written_atomically(path) as partial:
                archive(serialization_dir, weights, partial, include_in_archive)
        except OSError as error:
            raise archive_write_failed(
                path, error,
                f"The run's weights, vocabulary and metrics stay in {serialization_dir}: free "
                f"space there and run the same allennlp train command with --recover to write it.",
            ) from None
        logger.info("Wrote the model archive %s", path)
        return path

    return wrapped


def _wrap_once(owner: Any, name: str, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Replaces `owner.name` by `wrap(owner.name)`, unless an earlier call did already."""
    original = getattr(owner, name)
    if getattr(original, "_lpt_repair", False):
        return
    wrapped = wrap(original)
    wrapped._lpt_repair = True  # type: ignore[attr-defined]
    setattr(owner, name, wrapped)


def apply() -> None:
    """Installs the repairs (idempotent)."""
    from allennlp.commands import predict

    from allennlp import models
    from allennlp.commands import train

    archival.extracted_archive = extracted_archive  # load_archive looks it up at each call
    _wrap_once(archival, "cached_path", _naming_a_missing_archive)  # archival's own name for it
    _wrap_once(train, "train_model", _checking_the_run_first)  # train_model_from_file's lookup
    _wrap_once(archival, "archive_model", _archiving_atomically)
    # train and allennlp.models imported it by name.
    train.archive_model = models.archive_model = archival.archive_model
    _wrap_once(predict._PredictManager, "__init__", _naming_a_missing_input_file)
    _wrap_once(predict._PredictManager, "run", _checking_the_input_first)
    _wrap_once(SimpleEvaluator, "__call__", _writing_predictions_in_file_order)
    _wrap_once(BasicTextFieldEmbedder, "forward", _refusing_row_keys)
    _wrap_once(InitializerApplicator, "__call__", _checking_the_whole_model)
    _wrap_once(cached_transformers, "get", _finding_packaged_models)
    _wrap_once(cached_transformers, "get_tokenizer", _finding_packaged_models)
    warnings.filterwarnings(  # AllenNLP's calls only: a user's own call still hears of it
        "ignore", message=r"`torch\.cuda\.amp\.autocast\(args\.\.\.\)` is deprecated",
        category=FutureWarning, module=r"allennlp\.",
    )
