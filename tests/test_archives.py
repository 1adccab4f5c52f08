"""Damaged archives: a clear error naming the file, and nothing left in the temp directory.
Pickle payloads in an archive's weights are refused by weights-only loading."""
import os
import subprocess
import sys
import tarfile
import tempfile

import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.models.archival import load_archive

from config_swap import ROOT

LEGACY = os.path.join(os.path.dirname(__file__), "fixtures", "legacy_archives")
GOOD = os.path.join(LEGACY, "verbalizer-roberta.tar.gz")


def truncated(tmp_path):
    path = tmp_path / "model.tar.gz"
    data = open(GOOD, "rb").read()
    path.write_bytes(data[: len(data) // 2])
    return str(path)


@pytest.fixture
def private_tempdir(tmp_path, monkeypatch):
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_truncated_archive_names_itself_and_leaves_nothing(tmp_path, private_tempdir):
    archive = truncated(tmp_path)
    with pytest.raises(ConfigurationError, match=rf"{archive}: not a readable model archive .*damaged or incomplete"):
        load_archive(archive)
    assert os.listdir(private_tempdir) == []


def test_from_the_command_line_the_message_comes_last(tmp_path):
    archive = truncated(tmp_path)
    folder = tmp_path / "tmp"
    folder.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "allennlp", "evaluate", archive, os.path.join(ROOT, "tests", "fixtures", "tasks", "sst-2.tsv")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, TMPDIR=str(folder)),
    )
    assert done.returncode != 0
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert f"{archive}: not a readable model archive" in last, done.stderr[-2000:]
    assert os.listdir(folder) == []


class Payload:
    """Not a tensor: weights-only loading must refuse to unpickle it."""


def test_a_pickle_payload_in_the_weights_is_refused(tmp_path, private_tempdir):
    unpacked = tmp_path / "unpacked"
    with tarfile.open(GOOD) as tar:
        tar.extractall(unpacked, filter="data")
    weights = torch.load(unpacked / "weights.th", weights_only=True)
    weights["payload"] = Payload()
    torch.save(weights, unpacked / "weights.th")
    archive = tmp_path / "payload.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in os.listdir(unpacked):
            tar.add(unpacked / name, arcname=name)
    cwd = os.getcwd()
    os.chdir(ROOT)  # the archive names its model relative to the repository root
    try:
        with pytest.raises(ConfigurationError, match=r"payload.tar.gz: its weights \(weights.th\) hold a pickled .*Payload") as raised:
            load_archive(str(archive))
    finally:
        os.chdir(cwd)
    assert "weights_only" not in str(raised.value)  # never a way around the refusal
    assert os.listdir(private_tempdir) == []
