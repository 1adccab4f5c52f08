"""Few-shot splits on a synthetic file: counts, stratification, determinism, the subcommand."""
import collections
import os
import subprocess
import sys

import pytest

from allennlp_lpt.data.few_shot import make_splits, stratified_counts
from config_swap import ROOT


def synthetic(path, counts):
    """A GLUE-style file with `counts[label]` rows of each label, every sentence unique."""
    with open(path, "w") as handle:
        handle.write("sentence\tlabel\n")
        number = 0
        for label, count in counts.items():
            for _ in range(count):
                handle.write(f"sentence number {number}\t{label}\n")
                number += 1
    return str(path)


def rows(path):
    with open(path) as handle:
        return handle.read().splitlines()


def test_largest_remainder_and_every_class_present():
    assert stratified_counts({"a": 700, "b": 300}, 10) == {"a": 7, "b": 3}
    assert stratified_counts({"a": 500, "b": 300, "c": 200}, 7) == {"a": 4, "b": 2, "c": 1}
    # c's share rounds to 0; it still gets one example, taken from the largest class
    assert stratified_counts({"a": 980, "b": 15, "c": 5}, 5) == {"a": 3, "b": 1, "c": 1}
    assert sum(stratified_counts({"a": 3, "b": 2}, 100).values()) == 5


def test_splits_have_k_total_stratified_and_disjoint(tmp_path):
    source = synthetic(tmp_path / "train.tsv", {"0": 3000, "1": 1500, "2": 500})
    folders = make_splits(input_path=source, fmt="glue-tsv", task="toy", k=20, seeds=[13, 21],
                          output=str(tmp_path / "out"), label_column="label")
    assert folders == [str(tmp_path / "out" / "toy" / "20-13"), str(tmp_path / "out" / "toy" / "20-21")]
    for folder in folders:
        train, dev = rows(os.path.join(folder, "train.tsv")), rows(os.path.join(folder, "dev.tsv"))
        assert train[0] == dev[0] == "sentence\tlabel"
        assert len(train) - 1 == 20 and len(dev) - 1 == 1000
        assert collections.Counter(r.split("\t")[1] for r in train[1:]) == {"0": 12, "1": 6, "2": 2}
        assert collections.Counter(r.split("\t")[1] for r in dev[1:]) == {"0": 600, "1": 300, "2": 100}
        assert not set(train[1:]) & set(dev[1:])
    assert rows(os.path.join(folders[0], "train.tsv")) != rows(os.path.join(folders[1], "train.tsv"))


def test_the_same_seed_gives_the_same_files(tmp_path):
    source = synthetic(tmp_path / "train.tsv", {"0": 400, "1": 600})
    first = make_splits(input_path=source, fmt="glue-tsv", task="t", k=16, seeds=[42],
                        output=str(tmp_path / "a"), label_column="label")[0]
    second = make_splits(input_path=source, fmt="glue-tsv", task="t", k=16, seeds=[42],
                         output=str(tmp_path / "b"), label_column="label")[0]
    for name in ("train.tsv", "dev.tsv"):
        assert rows(os.path.join(first, name)) == rows(os.path.join(second, name))


def test_fewer_than_dev_size_left_takes_all_with_a_warning(tmp_path, caplog):
    source = synthetic(tmp_path / "train.tsv", {"0": 30, "1": 20})
    folder = make_splits(input_path=source, fmt="glue-tsv", task="t", k=10, seeds=[1],
                         output=str(tmp_path / "o"), label_column="label")[0]
    assert len(rows(os.path.join(folder, "dev.tsv"))) - 1 == 40
    assert "takes all of them" in caplog.text


def test_label_tsv_is_written_headerless(tmp_path):
    source = tmp_path / "train.tsv"
    source.write_text("".join(f"{i % 2}\ttext {i}\n" for i in range(100)))
    folder = make_splits(input_path=str(source), fmt="label-tsv", task="mr", k=8, seeds=[1],
                         output=str(tmp_path / "o"), label_column="label", dev_size=10)[0]
    train = rows(os.path.join(folder, "train.tsv"))
    assert len(train) == 8 and all(line.split("\t")[0] in {"0", "1"} for line in train)


def test_k_larger_than_the_data_is_an_error(tmp_path):
    source = synthetic(tmp_path / "train.tsv", {"0": 3})
    with pytest.raises(ValueError, match="--k 5 is more than the 3 examples"):
        make_splits(input_path=source, fmt="glue-tsv", task="t", k=5, seeds=[1],
                    output=str(tmp_path / "o"), label_column="label")


def test_the_subcommand(tmp_path):
    source = synthetic(tmp_path / "train.tsv", {"0": 60, "1": 40})
    done = subprocess.run(
        [sys.executable, "-m", "allennlp", "lpt-few-shot", "--input", source, "--format", "glue-tsv",
         "--task", "sst-2", "--k", "10", "--output", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for seed in (13, 21, 42, 87, 100):  # the default seeds
        assert len(rows(tmp_path / "out" / "sst-2" / f"10-{seed}" / "train.tsv")) == 11
        # It says what it wrote, where, and how big.
        train = tmp_path / "out" / "sst-2" / f"10-{seed}" / "train.tsv"
        assert f"wrote {train}: 10 examples, " in done.stdout and "KiB" in done.stdout
