"""
Faults a user meets through the commands, each a message naming the file and line, the config
key or the flag, and the fix, never a bare traceback; and each leaves nothing that looks
finished: label sets (a multi-class file read with the quickstart's binary labels; labels that
differ only in case or spaces; a label only the validation file has), compressed data files,
option types and values, missing and damaged archives and input files, the lower-layer cache's
directory and a full disk under it, `--recover` on a finished run, and a disk that fills while
archiving.
"""
import bz2
import errno
import gzip
import json
import os
import re
import sys
import tarfile
import zipfile

import pytest
import torch
from allennlp.commands import main
from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader
from allennlp.models.archival import load_archive

from config_swap import CONFIGS, tiny_config

QUICKSTART = os.path.join(CONFIGS, "quickstart.jsonnet")
LOWER = "model.text_field_embedder.token_embedders.tokens"
# What AllenNLP itself writes into the run folder before it reads data or builds anything.
LEFT_BY_ALLENNLP = {"config.json", "meta.json", "out.log"}


def _config(tiny_models, tmp_path, changes=None, epochs=1):
    """The quickstart on a tiny RoBERTa, with `changes` ({dotted key: value}, None removes)."""
    config = json.load(open(tiny_config(QUICKSTART, tiny_models, str(tmp_path), family="roberta", epochs=epochs)))
    for dotted, value in (changes or {}).items():
        *path, last = dotted.split(".")
        part = config
        for key in path:
            part = part.setdefault(key, {})
        if value is None:
            part.pop(last, None)
        else:
            part[last] = value
    return config


def _write(path, text):
    path.write_text(text)
    return str(path)


def _allennlp(monkeypatch, *args):
    """Runs `allennlp ARGS` in this process, as the command line does."""
    monkeypatch.setattr(sys, "argv", ["allennlp", *map(str, args)])
    main(prog="allennlp")


def _files(folder):
    """Every file under `folder` with its bytes."""
    return {
        os.path.relpath(os.path.join(root, name), folder): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(folder) for name in names
    }


@pytest.fixture(scope="module")
def finished_run(tiny_models, tmp_path_factory):
    """A finished one-epoch quickstart run: (its config file, its folder)."""
    folder = tmp_path_factory.mktemp("finished")
    path = folder / "config.json"
    path.write_text(json.dumps(_config(tiny_models, folder)))
    train_model(Params.from_file(str(path)), str(folder / "run"))
    return str(path), str(folder / "run")


# Labels.

def test_a_multi_class_file_read_with_the_binary_labels_suggests_declaring_its_labels(tiny_models, tmp_path):
    """TREC's six classes read with the quickstart's labels ['0', '1']: the error lists the
    file's labels and the override that declares them (not skip_invalid, which would drop four
    classes), and that override trains a six-class model."""
    rows = [f"{label}\tthe movie was {word} ." for label, word in zip("405132", "good bad fun great boring plot".split())]
    data = _write(tmp_path / "trec.tsv", "\n".join(rows * 2) + "\n")
    config = _config(tiny_models, tmp_path, {
        "train_data_path": data, "validation_data_path": data, "dataset_reader.format": "label-tsv"})
    with pytest.raises(ConfigurationError) as raised:
        train_model(Params(json.loads(json.dumps(config))), str(tmp_path / "binary"))
    message = str(raised.value)
    assert message.startswith(f"{data}:1: the row has the label '4', which is not one of ['0', '1'] (dataset_reader.labels)")
    assert """-o '{"dataset_reader.labels": ["0", "1", "2", "3", "4", "5"]}'""" in message
    assert "skip_invalid" not in message
    assert set(os.listdir(tmp_path / "binary")) <= LEFT_BY_ALLENNLP

    override = json.loads(message.split("-o '")[1].split("'")[0])
    config["dataset_reader"]["labels"] = override["dataset_reader.labels"]
    train_model(Params(config), str(tmp_path / "six"))
    labels = (tmp_path / "six" / "vocabulary" / "labels.txt").read_text().split()
    assert sorted(labels) == ["0", "1", "2", "3", "4", "5"]


TRAIN = "sentence\tlabel\nthe movie was good .\tpos\nthe movie was bad .\tneg\n"
SPELLINGS = {
    # name: (training file, validation file, the error: file, line, label, the earlier label's line)
    "surrounding spaces": (TRAIN + "a fun film .\tpos \n", TRAIN, ("train", 4, "pos ", "train", 2)),
    "case": (TRAIN + "a fun film .\tPos\n", TRAIN, ("train", 4, "Pos", "train", 2)),
    "case in the validation file": (TRAIN, TRAIN + "a boring plot .\tNEG\n", ("dev", 4, "NEG", "train", 3)),
}


@pytest.mark.parametrize("case", sorted(SPELLINGS))
def test_without_declared_labels_a_label_spelled_another_way_is_an_error(tiny_models, tmp_path, case):
    train, dev, (file, line, label, first_file, first_line) = SPELLINGS[case]
    paths = {"train": _write(tmp_path / "train.tsv", train), "dev": _write(tmp_path / "dev.tsv", dev)}
    config = _config(tiny_models, tmp_path, {
        "train_data_path": paths["train"], "validation_data_path": paths["dev"], "dataset_reader.labels": None})
    with pytest.raises(ConfigurationError) as raised:
        train_model(Params(config), str(tmp_path / "run"))
    known = label.strip().lower()
    assert str(raised.value) == (
        f"{paths[file]}:{line}: the row has the label {label!r}, which differs from the label "
        f"{known!r} ({paths[first_file]}:{first_line}) only in case or surrounding spaces, so it "
        f"would become a class of its own. Write the label one way in every file; if they are "
        f"different classes, declare dataset_reader.labels listing both."
    )
    assert set(os.listdir(tmp_path / "run")) <= LEFT_BY_ALLENNLP


def test_a_label_only_the_validation_file_has_is_one_warning_naming_it(tiny_models, tmp_path):
    """A class the training data lacks trains nothing: the run goes on (a small training set
    may lack a class), and the log names the file, the line and the label once."""
    train = _write(tmp_path / "train.tsv", TRAIN)
    dev = _write(tmp_path / "dev.tsv", TRAIN + "it was very boring .\tneutral\nit was not fun .\tneutral\n")
    config = _config(tiny_models, tmp_path, {
        "train_data_path": train, "validation_data_path": dev, "dataset_reader.labels": None})
    train_model(Params(config), str(tmp_path / "run"))
    log = (tmp_path / "run" / "out.log").read_text()
    expected = f"{dev}:4: the label 'neutral' is not in {train}, the first file read (the training data)"
    assert log.count(expected) == 1, log[-3000:]
    assert log.count("the label 'neutral' is not in") == 1


# Compressed data files.

def test_compressed_tsv_files_read_as_the_plain_file(tiny_models, tmp_path):
    """gzip (`.tsv.gz`, as pandas and AllenNLP's own readers take it), bzip2 and xz, recognised
    by their first bytes; `allennlp train` on a `.tsv.gz` runs."""
    import lzma

    plain = os.path.join(os.path.dirname(__file__), "fixtures", "sst2_tiny.tsv")
    data = open(plain, "rb").read()
    compressed = {".gz": gzip.compress(data), ".bz2": bz2.compress(data), ".xz": lzma.compress(data)}
    config = _config(tiny_models, tmp_path)
    reader = DatasetReader.from_params(Params(json.loads(json.dumps(config["dataset_reader"]))))

    def read(path):
        return [(str(i["tokens"].tokens), i["label"].label) for i in reader.read(path)]

    expected = read(plain)
    for suffix, content in compressed.items():
        path = tmp_path / f"train.tsv{suffix}"
        path.write_bytes(content)
        assert read(str(path)) == expected, suffix
    config["train_data_path"] = str(tmp_path / "train.tsv.gz")
    train_model(Params(config), str(tmp_path / "run"))
    assert (tmp_path / "run" / "model.tar.gz").exists()


def test_a_damaged_gzip_file_or_a_zip_archive_names_the_file(tiny_models, tmp_path):
    plain = open(os.path.join(os.path.dirname(__file__), "fixtures", "sst2_tiny.tsv"), "rb").read()
    cut = tmp_path / "cut.tsv.gz"
    cut.write_bytes(gzip.compress(plain)[:-30])
    with zipfile.ZipFile(tmp_path / "data.zip", "w") as handle:
        handle.writestr("train.tsv", plain)
    for path, message in (
        (cut, rf"{cut}: the gzip file does not decompress \(EOFError: .*\)\. It is damaged or incomplete"),
        (tmp_path / "data.zip", rf"{tmp_path / 'data.zip'}: the file is a zip archive, which this reader does not unpack"),
    ):
        config = _config(tiny_models, tmp_path, {"train_data_path": str(path)})
        run = tmp_path / f"run-{path.name}"
        with pytest.raises(ConfigurationError, match=message):
            train_model(Params(config), str(run))
        assert set(os.listdir(run)) <= LEFT_BY_ALLENNLP


# Options.

OPTIONS = {
    "prompt_layer as a string": (
        {f"{LOWER}.prompt_layer": "2", "model.seq2vec_encoder.prompt_layer": "2"},
        f'{LOWER}.prompt_layer="2" is a string: give an integer, e.g. "prompt_layer": 2 (without quotes).'),
    "prompt_length as a boolean": (
        {"model.seq2vec_encoder.prompt_length": True},
        "model.seq2vec_encoder.prompt_length=true is a boolean: give an integer."),
    "a generator option as a string": (
        {"model.seq2vec_encoder.generator.bottleneck": "64"},
        'model.seq2vec_encoder.generator.bottleneck="64" is a string: give an integer, e.g. "bottleneck": 64 (without quotes).'),
    "labels as numbers": (
        {"dataset_reader.labels": [0, 1]},
        'dataset_reader.labels[0]=0 is a number: give a string, e.g. "0" (in quotes).'),
    "batch_size 0": (
        {"data_loader.batch_size": 0},
        "data_loader.batch_size=0: give 1 or more instances per batch."),
    "a bucket sampler's batch_size 0": (
        {"data_loader": {"batch_sampler": {"type": "bucket", "batch_size": 0}}},
        "data_loader.batch_sampler.batch_size=0: give 1 or more instances per batch."),
    "num_epochs 0": (
        {"trainer.num_epochs": 0},
        "trainer.num_epochs=0: give 1 or more epochs (with 0 nothing trains and no model.tar.gz is written)."),
}


@pytest.mark.parametrize("case", sorted(OPTIONS))
def test_a_wrong_option_is_a_configuration_error_naming_the_key_and_the_fix(tiny_models, tmp_path, case):
    changes, message = OPTIONS[case]
    config = _config(tiny_models, tmp_path, changes)
    run = tmp_path / "run"
    with pytest.raises(ConfigurationError) as raised:
        train_model(Params(config), str(run))
    assert str(raised.value) == message
    assert not run.exists() or set(os.listdir(run)) <= LEFT_BY_ALLENNLP


# Missing and damaged archives and input files.

def test_a_missing_archive_or_input_file_is_named_and_nothing_is_written(finished_run, tmp_path, monkeypatch):
    _, run = finished_run
    archive = os.path.join(run, "model.tar.gz")
    lines = _write(tmp_path / "in.jsonl", '{"sentence": "a good film ."}\n')
    output = tmp_path / "out.jsonl"
    missing = str(tmp_path / "no-such.tar.gz")
    for args, message in (
        (["predict", missing, lines, "--predictor", "lpt_classifier", "--output-file", output],
         f"'{missing}': no such model archive"),
        (["evaluate", missing, lines], f"'{missing}': no such model archive"),
        (["predict", archive, tmp_path / "no-such.jsonl", "--predictor", "lpt_classifier", "--output-file", output],
         f"'{tmp_path / 'no-such.jsonl'}': no such input file"),
    ):
        with pytest.raises(ConfigurationError) as raised:
            _allennlp(monkeypatch, *args)
        assert str(raised.value).startswith(message)
        assert not output.exists()


def _damaged_archives(archive, folder):
    """Copies of `archive`: truncated, with a link member, with a pickled object in its weights."""
    data = open(archive, "rb").read()
    (folder / "truncated.tar.gz").write_bytes(data[: len(data) // 2])
    unpacked = folder / "unpacked"
    with tarfile.open(archive) as handle:
        handle.extractall(unpacked, filter="data")
    names = sorted(os.listdir(unpacked))
    with tarfile.open(folder / "link.tar.gz", "w:gz") as handle:
        for name in names:
            handle.add(unpacked / name, arcname=name)
        link = tarfile.TarInfo("notes")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        handle.addfile(link)
    weights = torch.load(unpacked / "weights.th", weights_only=True)
    weights["payload"] = Payload()
    torch.save(weights, unpacked / "weights.th")
    with tarfile.open(folder / "payload.tar.gz", "w:gz") as handle:
        for name in names:
            handle.add(unpacked / name, arcname=name)
    return {
        "truncated": (folder / "truncated.tar.gz", r"not a readable model archive \(EOFError: .*\)\. It is damaged or incomplete"),
        "a link member": (folder / "link.tar.gz", r"holds a member that is refused, not extracted \(AbsoluteLinkError: 'notes' is a link to an absolute path\)"),
        "a pickled object in its weights": (folder / "payload.tar.gz", r"its weights \(weights.th\) hold a pickled .*Payload, which loading refuses"),
        "missing": (folder / "no-such.tar.gz", r"no such model archive"),
    }


class Payload:
    """Not a tensor: weights-only loading refuses to unpickle it."""


def test_a_damaged_archive_is_named_by_lpt_slim_archive_and_predict(finished_run, tmp_path, monkeypatch):
    _, run = finished_run
    cases = _damaged_archives(os.path.join(run, "model.tar.gz"), tmp_path)
    lines = _write(tmp_path / "in.jsonl", '{"sentence": "a good film ."}\n')
    out = tmp_path / "out"
    out.mkdir()
    for case, (archive, pattern) in cases.items():
        for args in (["lpt-slim-archive", archive, out / "slim.tar.gz"],
                     ["predict", archive, lines, "--predictor", "lpt_classifier", "--output-file", out / "p.jsonl"]):
            with pytest.raises(ConfigurationError) as raised:
                _allennlp(monkeypatch, *args)
            message = str(raised.value)
            assert re.search(pattern, message) and str(archive) in message, (case, args[0], message)
            assert "cut short" not in message or case == "truncated"
            assert "weights_only" not in message  # never a way around the refusal
            assert os.listdir(out) == [], (case, args[0])


# The lower-layer cache.

def test_a_cache_dir_that_cannot_be_written_stops_the_run_when_the_model_is_built(tiny_models, tmp_path):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("")
    cache_dir = str(in_the_way / "cache")
    config = _config(tiny_models, tmp_path, {f"{LOWER}.cache": True, f"{LOWER}.cache_dir": cache_dir})
    with pytest.raises(ConfigurationError) as raised:
        train_model(Params(config), str(tmp_path / "run"))
    assert str(raised.value).startswith(f"cache_dir={cache_dir!r}: the lower-layer cache cannot write there (NotADirectoryError")
    assert str(raised.value).endswith("Give a directory you can write to, or leave cache_dir out to keep cached states in memory only.")
    assert set(os.listdir(tmp_path / "run")) <= LEFT_BY_ALLENNLP


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_cache_dir_is_a_configuration_error(tiny_models, tmp_path):
    cache_dir = tmp_path / "read-only"
    cache_dir.mkdir()
    cache_dir.chmod(0o555)
    config = _config(tiny_models, tmp_path, {f"{LOWER}.cache": True, f"{LOWER}.cache_dir": str(cache_dir)})
    with pytest.raises(ConfigurationError, match=r"cache_dir=.*read-only.*cannot write there \(PermissionError"):
        train_model(Params(config), str(tmp_path / "run"))


def test_a_full_disk_under_the_cache_stops_storing_with_one_warning_and_training_goes_on(tiny_models, tmp_path, monkeypatch):
    """The disk fills after two entries: the run ends with the metrics of a run whose cache
    stays in memory, one warning in its log, and no partial file in the cache directory."""
    from allennlp_lpt.core import cache

    writes = []

    def filling(path, data):
        writes.append(path)
        if len(writes) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        with open(path, "wb") as handle:
            handle.write(data)

    settings = {f"{LOWER}.cache": True, "dataset_reader.cache_keys": True}
    in_memory = _config(tiny_models, tmp_path, settings, epochs=2)
    train_model(Params(in_memory), str(tmp_path / "memory"))
    monkeypatch.setattr(cache, "_write_file", filling)
    on_disk = _config(tiny_models, tmp_path, {**settings, f"{LOWER}.cache_memory_mb": 0, f"{LOWER}.cache_dir": str(tmp_path / "cache")}, epochs=2)
    train_model(Params(on_disk), str(tmp_path / "disk"))

    metrics = [json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("memory", "disk")]
    for key in ("training_loss", "validation_loss", "validation_accuracy"):
        assert metrics[0][key] == pytest.approx(metrics[1][key], abs=1e-6), key
    log = (tmp_path / "disk" / "out.log").read_text()
    assert log.count("The lower-layer cache could not write") == 1
    assert "No space left on device" in log
    left = [name for _, _, names in os.walk(tmp_path / "cache") for name in names]
    assert len(left) == 2 and all(name.endswith(".pt") for name in left), left


# --recover on a finished run, and a disk that fills while archiving.

def test_recover_on_a_finished_run_changes_nothing_and_says_so(finished_run, monkeypatch, caplog):
    config, run = finished_run
    before = _files(run)
    assert "training_duration" in json.loads(before["metrics.json"])
    _allennlp(monkeypatch, "train", config, "-s", run, "--recover")
    assert _files(run) == before
    assert any("holds a finished run" in r.getMessage() and "--recover has nothing to resume" in r.getMessage()
               for r in caplog.records)


def test_a_disk_that_fills_while_archiving_leaves_no_archive_and_recover_writes_it(tiny_models, tmp_path, monkeypatch):
    real = tarfile.TarFile.addfile

    def filling(self, tarinfo, fileobj=None):
        if tarinfo.name == "weights.th":  # after config.json: a partial archive
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, tarinfo, fileobj)

    config = _config(tiny_models, tmp_path)
    run = tmp_path / "run"
    monkeypatch.setattr(tarfile.TarFile, "addfile", filling)
    with pytest.raises(OSError) as raised:
        train_model(Params(json.loads(json.dumps(config))), str(run))
    assert str(raised.value).startswith(f"[Errno 28] {run / 'model.tar.gz'}: writing the archive failed (No space left on device)")
    assert "--recover" in str(raised.value)
    assert not [name for name in os.listdir(run) if "tar.gz" in name], os.listdir(run)

    monkeypatch.setattr(tarfile.TarFile, "addfile", real)
    metrics = (run / "metrics.json").read_text()
    train_model(Params(config), str(run), recover=True)
    assert (run / "metrics.json").read_text() == metrics  # nothing trained again
    assert load_archive(str(run / "model.tar.gz")).model is not None
