"""
Few-shot splits as the paper draws them: K training examples in total, stratified by class
frequency, and a dev set of further training examples drawn the same way.
"""
import csv
import logging
import os
import random
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

logger = logging.getLogger(__name__)

Row = List[str]


def stratified_counts(class_sizes: Dict[str, int], total: int) -> Dict[str, int]:
    """
    How many examples to draw from each class: proportional to its size, rounded by largest
    remainder, every class at least once when `total` allows it, never more than a class has.
    """
    available = sum(class_sizes.values())
    total = min(total, available)
    if total <= 0:
        return {label: 0 for label in class_sizes}
    exact = {label: total * size / available for label, size in class_sizes.items()}
    counts = {label: int(value) for label, value in exact.items()}
    by_remainder = sorted(class_sizes, key=lambda label: (-(exact[label] - counts[label]), label))
    for label in by_remainder[: total - sum(counts.values())]:
        counts[label] += 1
    if total >= len(class_sizes):
        for label in sorted(class_sizes):
            if counts[label] == 0 and class_sizes[label] > 0:
                donor = max(sorted(counts), key=lambda other: counts[other])
                counts[donor] -= 1
                counts[label] += 1
    return counts


def draw(rows_by_class: Dict[str, List[int]], counts: Dict[str, int], rng: random.Random) -> List[int]:
    chosen: List[int] = []
    for label in sorted(rows_by_class):
        chosen.extend(rng.sample(rows_by_class[label], counts[label]))
    return sorted(chosen)


def read_rows(path: str, fmt: str) -> Tuple[Row, List[Row], List[int]]:
    """Returns (header or [], data rows, their line numbers)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader) if fmt == "glue-tsv" else []
        rows, lines = [], []
        for row in reader:
            if row and row != [""]:
                rows.append(row)
                lines.append(reader.line_num)
    return header, rows, lines


def write_rows(path: str, header: Row, rows: Sequence[Row]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in ([header] if header else []) + list(rows):
            handle.write("\t".join(row) + "\n")


def make_splits(
    *,
    input_path: str,
    fmt: str,
    task: str,
    k: int,
    seeds: Sequence[int],
    output: str,
    label_column: str,
    dev_size: int = 1000,
) -> List[str]:
    """Writes `output/task/k-seed/{train,dev}.tsv` for every seed; returns the folders."""
    if k < 1:
        raise ValueError(f"--k {k}: the number of training examples must be at least 1")
    header, rows, lines = read_rows(input_path, fmt)
    if fmt == "glue-tsv":
        if label_column not in header:
            raise ValueError(f"{input_path}:1: the header {header} has no label column {label_column!r}")
        label_position = header.index(label_column)
    else:
        label_position = 0
    rows_by_class: Dict[str, List[int]] = defaultdict(list)
    for index, (row, line) in enumerate(zip(rows, lines)):
        if len(row) <= label_position or not row[label_position].strip():
            raise ValueError(f"{input_path}:{line}: the row has no label")
        rows_by_class[row[label_position]].append(index)
    if k > len(rows):
        raise ValueError(f"--k {k} is more than the {len(rows)} examples in {input_path}")
    folders = []
    for seed in seeds:
        rng = random.Random(seed)
        sizes = {label: len(indices) for label, indices in rows_by_class.items()}
        train = draw(rows_by_class, stratified_counts(sizes, k), rng)
        taken = set(train)
        rest = {label: [i for i in indices if i not in taken] for label, indices in rows_by_class.items()}
        left = sum(len(indices) for indices in rest.values())
        if left < dev_size:
            logger.warning(
                "Only %d examples are left after the %d training examples: the dev set of seed %d "
                "takes all of them (not %d).", left, k, seed, dev_size,
            )
        dev = draw(rest, stratified_counts({l: len(i) for l, i in rest.items()}, dev_size), rng)
        folder = os.path.join(output, task, f"{k}-{seed}")
        write_rows(os.path.join(folder, "train.tsv"), header, [rows[i] for i in train])
        write_rows(os.path.join(folder, "dev.tsv"), header, [rows[i] for i in dev])
        folders.append(folder)
    return folders
