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
  `extracted_archive` below removes the folder and raises a ConfigurationError naming the file.
  Global: `load_archive` opens an archive before its config, which names the components, is read.
- Notices that no user can act on, raised by AllenNLP's own code on every epoch: its trainer's
  deprecated `torch.cuda.amp.autocast(...)`, its `huggingface_adamw` optimizer's deprecation.
  Global: a warnings filter is process-wide by nature; these match those two messages only (the
  first only where AllenNLP's code raises it).
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
  file, so a bad line is named by file and line and nothing is predicted.
  Global: only AllenNLP's predict command knows the input file (other predictors are untouched).
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
"""
import contextlib
import functools
import inspect
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
from allennlp.data import TextFieldTensors
from allennlp.models import Model, archival
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.nn.initializers import InitializerApplicator

from allennlp_lpt.core.cache import RowKeys
from allennlp_lpt.core.pretrained import SharedParameter
from allennlp_lpt.modules import pairing


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
    _wrap_once(BasicTextFieldEmbedder, "forward", _refusing_row_keys)
    _wrap_once(InitializerApplicator, "__call__", _checking_the_whole_model)
    _wrap_once(cached_transformers, "get", _finding_packaged_models)
    _wrap_once(cached_transformers, "get_tokenizer", _finding_packaged_models)
    warnings.filterwarnings(  # AllenNLP's calls only: a user's own call still hears of it
        "ignore", message=r"`torch\.cuda\.amp\.autocast\(args\.\.\.\)` is deprecated",
        category=FutureWarning, module=r"allennlp\.",
    )
    warnings.filterwarnings(
        "ignore", message=r"This implementation of AdamW is deprecated", category=FutureWarning
    )
