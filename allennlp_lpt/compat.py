"""
Repairs of AllenNLP 2.10 defects that users of this package meet, applied once when the package
is imported (by `--include-package allennlp_lpt` or a plugins file). Each leaves AllenNLP's
behaviour unchanged for valid input.

- A damaged model archive (a copy or download cut short) ends in a bare `EOFError` that does not
  name the archive, and leaves its half-extracted folder in the temp directory: AllenNLP's
  `extracted_archive` creates the folder before extracting and forgets it when extraction fails.
  `extracted_archive` below removes the folder and raises a ConfigurationError naming the file.
- Notices that no user can act on, raised by AllenNLP's own code on every epoch: its trainer's
  deprecated `torch.cuda.amp.autocast(...)`, its `huggingface_adamw` optimizer's deprecation.
- `BasicTextFieldEmbedder` hands every entry of a text field to its token embedder, so the
  readers' `cache_keys` given to a model whose embedder is not `late_prompt_transformer` ends in
  a bare `TypeError` about `row_keys` inside AllenNLP; it becomes a ConfigurationError naming
  the config key and the fix.
- `allennlp predict` hands a predictor one line at a time, without the file or line number, and
  writes each batch's predictions as it goes. Before it reads the first line, `_PredictManager`
  now lets a predictor with a `check_input_file(path)` method (`lpt_classifier`) check the whole
  file, so a bad line is named by file and line and nothing is predicted.
- AllenNLP's own `pretrained_transformer` embedder, tokenizer and indexer load through
  `cached_transformers`, which knows only folders and the hub: the hub name of a model that a
  package installs offline (all-MiniLM-L6-v2, `core.family.PACKAGED_MODELS`) now loads from
  that package there too, as it does for this package's components (full fine-tuning and BitFit
  beside late prompt use that embedder).
- A model's `initializer` whose regex matches a frozen pretrained weight of a late-prompt
  backbone would overwrite it in place, for every model of that backbone in the process (they
  share one copy): `InitializerApplicator` now refuses it with a ConfigurationError naming the
  regex, the weight and the fix, before it initializes anything.
"""
import contextlib
import functools
import re
import shutil
import tarfile
import tempfile
import warnings
import zlib
from typing import Any, Callable, Iterator

import torch
from allennlp.common import cached_transformers
from allennlp.common.checks import ConfigurationError
from allennlp.models import archival
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.nn.initializers import InitializerApplicator

from allennlp_lpt.core.pretrained import SharedParameter


@contextlib.contextmanager
def extracted_archive(resolved_archive_file: str, cleanup: bool = True) -> Iterator[str]:
    """AllenNLP's `extracted_archive`, which leaves nothing behind when extraction fails."""
    tempdir = tempfile.mkdtemp()
    try:
        with tarfile.open(resolved_archive_file, "r:gz") as archive:
            archive.extractall(tempdir, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        shutil.rmtree(tempdir, ignore_errors=True)
        raise ConfigurationError(
            f"{resolved_archive_file}: not a readable model archive ({type(error).__name__}: "
            f"{error}). It is damaged or incomplete, e.g. a copy or download cut short: write it "
            f"again (allennlp train) or fetch it again."
        ) from None
    except BaseException:
        shutil.rmtree(tempdir, ignore_errors=True)
        raise
    try:
        yield tempdir
    finally:
        if cleanup:
            shutil.rmtree(tempdir, ignore_errors=True)


def _explaining_row_keys(forward: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(forward)
    def wrapped(self: BasicTextFieldEmbedder, *args: Any, **kwargs: Any) -> Any:
        try:
            return forward(self, *args, **kwargs)
        except TypeError as error:
            if "'row_keys'" not in str(error):
                raise
            raise ConfigurationError(
                f"dataset_reader.cache_keys is true, which gives each batch the lower-layer cache "
                f"keys that only a late_prompt_transformer embedder takes, but this model's token "
                f"embedder does not ({error}). Remove cache_keys from the dataset reader(s)."
            ) from None

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


def _refusing_shared_weights(call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def wrapped(self: InitializerApplicator, module: torch.nn.Module) -> None:
        # An initializer writes in place: on a shared backbone weight it would change every
        # model of that backbone in the process (and discard the pretrained values).
        for name, parameter in module.named_parameters():
            if not isinstance(parameter, SharedParameter):
                continue
            if self._prevent_regex is not None and re.search(self._prevent_regex, name):
                continue
            regex = next((regex for regex, _ in self._initializers if re.search(regex, name)), None)
            if regex is not None:
                raise ConfigurationError(
                    f"model.initializer: the regex {regex!r} matches {name}, a frozen pretrained "
                    f"weight of {parameter.model_name!r} that every model of that backbone in "
                    f"this process shares; initializing it would replace the pretrained values "
                    f"for all of them. Make the regex match only what trains (e.g. "
                    f"'_classification_layer.*'), or add the backbone to prevent_regexes."
                )
        return call(self, module)

    return wrapped


def _finding_packaged_models(load: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(load)
    def wrapped(model_name: str, *args: Any, **kwargs: Any) -> Any:
        # The hub name of a model that a package installs offline loads from that package.
        from allennlp_lpt.core.family import resolve_model_name

        return load(resolve_model_name(model_name), *args, **kwargs)

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

    archival.extracted_archive = extracted_archive  # load_archive looks it up at each call
    _wrap_once(predict._PredictManager, "run", _checking_the_input_first)
    _wrap_once(BasicTextFieldEmbedder, "forward", _explaining_row_keys)
    _wrap_once(InitializerApplicator, "__call__", _refusing_shared_weights)
    _wrap_once(cached_transformers, "get", _finding_packaged_models)
    _wrap_once(cached_transformers, "get_tokenizer", _finding_packaged_models)
    warnings.filterwarnings(
        "ignore", message=r"`torch\.cuda\.amp\.autocast\(args\.\.\.\)` is deprecated", category=FutureWarning
    )
    warnings.filterwarnings(
        "ignore", message=r"This implementation of AdamW is deprecated", category=FutureWarning
    )
