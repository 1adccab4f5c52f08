"""
Reading and writing model archives (`model.tar.gz`) with errors that name the archive and the fix,
and without leaving anything half-made: what `compat.extracted_archive`, AllenNLP's archiving
(through `compat`) and `allennlp lpt-slim-archive` share.
"""
import contextlib
import os
import pickle
import re
import tarfile
import zipfile
import zlib
from typing import Iterator

import torch
from allennlp.common.checks import ConfigurationError

# The weights files an archive may hold, in the order AllenNLP looks for them.
WEIGHTS_NAMES = ("weights.th", "best.th")


def missing_archive_message(archive: str) -> str:
    """What to say when the archive `archive` does not exist."""
    return (
        f"{archive!r}: no such model archive (relative paths are read from {os.getcwd()}). Give "
        f"the model.tar.gz that allennlp train wrote into its -s folder, e.g. "
        f"runs/quickstart/model.tar.gz."
    )


def extract_archive(archive: str, folder: str) -> None:
    """
    Extracts the model archive `archive` into `folder` (which exists) with tarfile's `data`
    filter, then checks that its weights load weights-only. Raises a ConfigurationError naming
    `archive` when it does not exist, is damaged or truncated, holds a member the filter refuses
    (a link or path leading outside the archive's folder, a device), or weights that PyTorch
    refuses to unpickle. The caller removes `folder` on failure.

    # Parameters

    archive : `str`
        The path of a `.tar.gz` model archive.
    folder : `str`
        An existing, empty directory.
    """
    if not os.path.exists(archive):
        raise ConfigurationError(missing_archive_message(archive))
    try:
        with tarfile.open(archive, "r:gz") as handle:
            handle.extractall(folder, filter="data")
    except tarfile.FilterError as error:
        # Not damage: the archive was made or changed by something other than AllenNLP, whose
        # archives hold only plain files and folders.
        raise ConfigurationError(
            f"{archive}: holds a member that is refused, not extracted ({type(error).__name__}: "
            f"{error}); a model archive that allennlp train writes holds only plain files and "
            f"folders. Write the archive again from the run's folder (allennlp train; or "
            f"allennlp.models.archive_model)."
        ) from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise ConfigurationError(
            f"{archive}: not a readable model archive ({type(error).__name__}: {error}). It is "
            f"damaged or incomplete, e.g. a copy or download cut short: write it again (allennlp "
            f"train) or fetch it again."
        ) from None
    for name in WEIGHTS_NAMES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            check_weights(path, archive)


def check_weights(path: str, archive: str) -> None:
    """
    Raises a ConfigurationError naming `archive` where the weights file `path` does not load
    weights-only (a pickled object other than tensors, or a damaged file). Memory-mapped, so
    only the file's pickle is read, not its tensors.
    """
    try:
        # mmap needs the zip format of torch.save; older files are read whole.
        torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        # Only what was pickled: PyTorch's own text goes on to ways of loading it anyway.
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        what = f"a pickled {found.group(1)}" if found else "a pickled object that is not a tensor"
        raise ConfigurationError(
            f"{archive}: its weights ({os.path.basename(path)}) hold {what}, which loading "
            f"refuses: a model archive's weights are tensors only. The archive was not written "
            f"by allennlp train, or was changed since: use one that allennlp train wrote."
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as error:
        raise ConfigurationError(
            f"{archive}: its weights ({os.path.basename(path)}) do not load ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200] if str(error) else ''}). The archive is damaged: "
            f"write it again (allennlp train) or fetch it again."
        ) from None


@contextlib.contextmanager
def written_atomically(path: str) -> Iterator[str]:
    """
    Yields a temporary path beside `path` to write to; once the block ends without an error,
    the file is renamed to `path` (atomic on one file system), so `path` is either the complete
    new file or what was there before. On an error the temporary file is removed.
    """
    temporary = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.{os.getpid()}.partial")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def archive_write_failed(path: str, error: OSError, remedy: str) -> OSError:
    """An OSError naming the archive that could not be written, what is left and `remedy`."""
    return OSError(
        error.errno,
        f"{path}: writing the archive failed ({error.strerror or error}); nothing was left under "
        f"that name. {remedy}",
    )

