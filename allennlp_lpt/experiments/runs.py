"""
One run's life, shared by `lpt-sweep`, `lpt-compare` and the search: `allennlp train` of a
config into its own folder as a child process that never outlives the command; whether the run
finished (its archive verified, then marked); its inference throughput; and the locks that keep
two commands from training into one folder.

A run is finished when `RUN/finished.json` exists: written atomically once the run's
`metrics.json` exists and its `model.tar.gz` opens, holds `config.json` and `weights.th`, and the
weights load. AllenNLP writes `metrics.json` before the archive, so a run killed (or out of
disk) while archiving has `metrics.json` and no archive, or a truncated one from an older
writer: it is not finished and is trained again. A run without the marker whose archive verifies
(the command was killed between the archive and the marker, or the run is older than the
marker) is verified and marked when it is next looked at.

Locks (`fcntl.flock`, released by the kernel when their process dies, so none is ever stale):
`OUT/.locks/output.lock` for a whole command, taken exclusively by `lpt-sweep` and
`lpt-compare` (a second command on one OUT refuses, naming the first) or shared by processes
that cooperate on one OUT (a search's workers, each trial in a run folder of its own), and
`OUT/.locks/run-NAME.lock` for each run while it trains, so that cooperating processes never
train one run twice. Who holds a lock is written beside it (`*.lock.PID.json`: pid, command
line, since when).
"""
import contextlib
import ctypes
import ctypes.util
import datetime
import fcntl
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

FINISHED = "finished.json"
INFERENCE = "inference.json"
LOCKS = ".locks"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class InUse(RuntimeError):
    """Another process holds a lock this command needs; the message names it."""


# ---- finished or not ---------------------------------------------------------------------------


def archive_problem(directory: str) -> Optional[str]:
    """
    What is wrong with the run in `directory` as a finished run (None when nothing is): no
    `metrics.json`, or a `model.tar.gz` that is missing, does not open to its end, lacks
    `config.json` or its weights, or holds weights that do not load.
    """
    from allennlp.common.checks import ConfigurationError

    from allennlp_lpt.archives import WEIGHTS_NAMES, extract_archive

    if not os.path.isfile(os.path.join(directory, "metrics.json")):
        return "no metrics.json (training did not end)"
    archive = os.path.join(directory, "model.tar.gz")
    if not os.path.isfile(archive):
        return "no model.tar.gz (stopped before or while archiving)"
    with tempfile.TemporaryDirectory() as folder:
        try:
            extract_archive(archive, folder)  # reads to the end: a truncated archive fails here
        except ConfigurationError as error:
            return str(error)
        if not os.path.isfile(os.path.join(folder, "config.json")):
            return "model.tar.gz holds no config.json"
        if not any(os.path.isfile(os.path.join(folder, name)) for name in WEIGHTS_NAMES):
            return f"model.tar.gz holds no weights ({' or '.join(WEIGHTS_NAMES)})"
    return None


def _write_json(path: str, value: Dict[str, Any]) -> None:
    from allennlp_lpt.archives import written_atomically

    with written_atomically(path) as partial, open(partial, "w") as handle:
        json.dump(value, handle, indent=2)


def is_finished(directory: str) -> bool:
    """Whether the run in `directory` is marked finished and its archive is the one marked (a
    replaced or removed archive unmarks it)."""
    marker = os.path.join(directory, FINISHED)
    archive = os.path.join(directory, "model.tar.gz")
    if not os.path.isfile(marker) or not os.path.isfile(archive):
        return False
    try:
        with open(marker) as handle:
            recorded = json.load(handle).get("archive_bytes")
    except (OSError, ValueError):
        return False
    return recorded == os.path.getsize(archive)


def mark_finished(directory: str) -> Optional[str]:
    """
    Marks the run in `directory` finished (`finished.json`, written atomically) when its archive
    verifies (`archive_problem`); returns the problem instead, marking nothing. A run already
    marked is left as it is.
    """
    if is_finished(directory):
        return None
    problem = archive_problem(directory)
    if problem is None:
        _write_json(os.path.join(directory, FINISHED), {
            "archive_bytes": os.path.getsize(os.path.join(directory, "model.tar.gz")),
            "verified": datetime.datetime.now().isoformat(timespec="seconds"),
        })
    return problem


# ---- inference throughput ----------------------------------------------------------------------


def inference_throughput(directory: str) -> Dict[str, Any]:
    """
    Sentences per second of the archived model of a finished run over the set it is scored on
    (`test_data_path` where the config evaluates on test, else `validation_data_path`): the
    instances are read and batched first (the config's validation data loader, else its data
    loader), then only the forward passes are timed, without gradients, on the training device.
    Kept in `RUN/inference.json` and read from there afterwards.
    """
    path = os.path.join(directory, INFERENCE)
    if os.path.isfile(path):
        with open(path) as handle:
            return json.load(handle)
    import torch
    from allennlp.common import Params
    from allennlp.data import DataLoader
    from allennlp.models.archival import load_archive
    from allennlp.nn import util as nn_util

    archive = load_archive(os.path.join(directory, "model.tar.gz"))
    config = archive.config
    on_test = bool(config.get("evaluate_on_test", False)) and config.get("test_data_path", None)
    data_path = config["test_data_path" if on_test else "validation_data_path"]
    loader_params = config.get("validation_data_loader", None) or config["data_loader"]
    loader = DataLoader.from_params(params=loader_params.duplicate(), reader=archive.validation_dataset_reader,
                                    data_path=data_path)
    model = archive.model
    loader.index_with(model.vocab)
    gpu = config.get("trainer", Params({})).get("cuda_device", -1)
    device = torch.device("cuda", 0) if torch.cuda.is_available() and gpu not in (-1, None) else torch.device("cpu")
    batches = [nn_util.move_to_device(batch, device) for batch in loader]
    sentences = sum(_batch_size(batch) for batch in batches)
    model.to(device).eval()
    with torch.inference_mode():
        model(**batches[0])  # warm-up (lazy initialisation, allocator), not timed
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for batch in batches:
            model(**batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    model.get_metrics(reset=True)
    result = {"data_path": data_path, "sentences": sentences, "seconds": seconds,
              "sentences_per_second": sentences / seconds if seconds > 0 else None,
              "device": str(device), "torch_threads": torch.get_num_threads()}
    _write_json(path, result)
    return result


def _batch_size(batch: Any) -> int:
    """The number of instances in a batch: the first dimension of its first tensor."""
    import torch

    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    values = batch.values() if isinstance(batch, dict) else batch
    return next(_batch_size(value) for value in values if isinstance(value, (dict, list, torch.Tensor)))


# ---- training a run in a child process ---------------------------------------------------------


def _dies_with(parent: int) -> Callable[[], None]:
    """A `preexec_fn` after which the child is killed when `parent` dies (Linux's
    PR_SET_PDEATHSIG; elsewhere the parent's own handlers are all there is)."""
    libc = None
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def set_up() -> None:
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_up


def train(
    config_path: str,
    directory: str,
    *,
    overrides: Dict[str, Any],
    log: str,
    include_packages: Sequence[str] = ("allennlp_lpt",),
) -> int:
    """
    `allennlp train CONFIG -s DIRECTORY -o OVERRIDES` in a child process, its output into `log`;
    returns its exit status. `directory` is replaced (an unfinished or changed run starts again).
    The child runs in a process group of its own, killed with everything in it when this
    function ends other than by the child's exit (an exception, `KeyboardInterrupt`, a signal
    that `terminated_by_signals` turns into an exception), and killed by the kernel if this
    process dies first (Linux).
    """
    if os.path.isdir(directory):
        shutil.rmtree(directory)
    command = [sys.executable, "-m", "allennlp", "train", config_path, "-s", directory,
               "-o", json.dumps(overrides)]
    for package in include_packages:
        command += ["--include-package", package]
    with open(log, "w") as handle:
        # A session of its own: a terminal's Ctrl-C reaches this process only, which then ends
        # the child (AllenNLP would otherwise spend the interruption archiving a run that is
        # never reused).
        child = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                 start_new_session=True, preexec_fn=_dies_with(os.getpid()))
        try:
            return child.wait()
        finally:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()


class Terminated(SystemExit):
    """The command received SIGTERM or SIGHUP (its exit status is 128 + the signal's number)."""


@contextlib.contextmanager
def terminated_by_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise `Terminated` while the block runs (so that `train` ends its
    child and the locks' holder files are removed), as SIGINT raises KeyboardInterrupt; the
    previous handlers are restored after. Outside the main thread, where Python cannot handle
    signals, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(128 + signum)

    previous = {number: signal.signal(number, handler) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


# ---- locks -------------------------------------------------------------------------------------


def _holders(lock_path: str) -> List[Dict[str, Any]]:
    """The live holders recorded beside `lock_path` (files of dead processes are ignored)."""
    holders = []
    for path in sorted(glob.glob(glob.escape(lock_path) + ".*.json")):
        try:
            with open(path) as handle:
                holder = json.load(handle)
            os.kill(int(holder["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        holders.append(holder)
    return holders


def _describe(holders: List[Dict[str, Any]]) -> str:
    if not holders:
        return "another process (it recorded no details)"
    return "; ".join(f"pid {h['pid']} ({h['command']}), since {h['since']}" for h in holders)


@contextlib.contextmanager
def _locked(lock_path: str, *, shared: bool, what: str, fix: str) -> Iterator[None]:
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    holder = f"{lock_path}.{os.getpid()}.json"
    try:
        try:
            fcntl.flock(descriptor, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InUse(f"{what} is in use by {_describe(_holders(lock_path))}. {fix}") from None
        _write_json(holder, {"pid": os.getpid(), "command": " ".join(sys.argv) or sys.executable,
                             "since": datetime.datetime.now().isoformat(timespec="seconds")})
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.remove(holder)
    finally:
        os.close(descriptor)  # releases the lock


@contextlib.contextmanager
def owning_output(output: str, *, command: str, shared: bool = False) -> Iterator[None]:
    """
    Holds `OUT/.locks/output.lock` while the block runs, with SIGTERM and SIGHUP ending it
    (`terminated_by_signals`). Exclusive (`lpt-sweep`, `lpt-compare`): a second command on one
    OUT raises `InUse` naming the process that holds it, pid, command line and since when.
    Shared (`shared=True`): processes that cooperate on OUT (each run under `run_lock`) hold it
    together, and an exclusive command is refused while any of them runs.
    """
    with _locked(os.path.join(output, LOCKS, "output.lock"), shared=shared, what=f"{command}: {output}",
                 fix="Wait for it to end (or stop it), or give another -s folder."), terminated_by_signals():
        yield


@contextlib.contextmanager
def run_lock(output: str, name: str) -> Iterator[None]:
    """Holds the lock of the run `OUT/NAME` while the block runs (trains, verifies, scores it);
    `InUse` where another process holds it."""
    with _locked(os.path.join(output, LOCKS, f"run-{name}.lock"), shared=False, what=f"the run {name} in {output}",
                 fix="Another process is training it."):
        yield


# ---- what a run keeps --------------------------------------------------------------------------


def lean_overrides(config: Dict[str, Any]) -> Dict[str, Any]:
    """
    `-o` overrides that keep a run's folder small, for `config` (a dict): `save_backbone: false`
    on every component that takes it (the frozen backbone is left out of `best.th` and the
    archive and rebuilt from `model_name` when the archive is loaded, as `allennlp
    lpt-slim-archive` does afterwards), and no per-epoch checkpoints (`trainer.checkpointer.
    save_completed_epochs: false`: the trainer still keeps the best epoch's weights, `best.th`,
    which the archive holds; without checkpoints a run cannot be continued with `--recover`, and
    an unfinished run is trained again from its start anyway).
    """
    from allennlp_lpt.commands.slim_archive import restores_from_model_name
    from allennlp_lpt.experiments.configs import paths_of

    # AllenNLP's overrides add keys to existing objects only: a checkpointer of the config's
    # own is changed, else one is given.
    overrides: Dict[str, Any] = {"trainer.checkpointer.save_completed_epochs": False} \
        if isinstance(config.get("trainer", {}).get("checkpointer"), dict) \
        else {"trainer.checkpointer": {"save_completed_epochs": False}}
    for path in paths_of(config, "type"):
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        value: Any = config
        for part in path.split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        if isinstance(value, str) and restores_from_model_name(value):
            overrides[f"{parent}.save_backbone" if parent else "save_backbone"] = False
    return overrides
