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
"""
import contextlib
import shutil
import tarfile
import tempfile
import warnings
import zlib
from typing import Iterator

from allennlp.common.checks import ConfigurationError
from allennlp.models import archival


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


def apply() -> None:
    """Installs the repairs (idempotent)."""
    archival.extracted_archive = extracted_archive  # load_archive looks it up at each call
    warnings.filterwarnings(
        "ignore", message=r"`torch\.cuda\.amp\.autocast\(args\.\.\.\)` is deprecated", category=FutureWarning
    )
    warnings.filterwarnings(
        "ignore", message=r"This implementation of AdamW is deprecated", category=FutureWarning
    )
