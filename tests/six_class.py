"""
Two 6-class archives trained once per test run by `allennlp train` (the `six_class` fixture
of conftest.py), for the tests of what predictions and evaluations say: the quickstart's
`lpt_basic_classifier` on a TSV file of the user's own (column `question`, label names of its
own) and the paper's verbalizer on the same rows as a TREC file (`lpt_task`).
"""
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

from allennlp.common import Params

from config_swap import CONFIGS, ROOT, tiny_config

LABELS = ["0", "1", "2", "3", "4", "5"]
TREC_NAMES = ["description", "entity", "abbreviation", "human", "location", "numeric"]
OWN_NAMES = {"0": "DESC", "1": "ENTY", "2": "ABBR", "3": "HUM", "4": "LOC", "5": "NUM"}
# Real TREC's frequencies rank its labels 0, 1, 3, 5, 4, 2: so do these (6, 5, 4, 3, 2, 1 rows).
QUESTIONS = {
    "0": ["what is a film ?", "what does fun mean ?", "what is the plot of this very long and boring film ?",
          "what is it ?", "what does boring mean ?", "what is a story ?"],
    "1": ["what film was that ?", "what is the story of the movie that was very good and fun ?",
          "what is this ?", "what acting is good ?", "what plot ?"],
    "3": ["who was the actor ?", "who is it ?", "who was the very good and really fun actor of the film ?",
          "who was that ?"],
    "5": ["how many films are there ?", "how many ?", "how many stories are there in this very long movie ?"],
    "4": ["where is the movie ?", "where was the very long and really boring film made ?"],
    "2": ["what does a b c stand for ?"],
}
# Interleaved, so that the file's order is neither the labels' (first seen: 0, 1, 3, 5, 4, 2)
# nor the texts' lengths'.
ROWS = [(label, texts[i]) for i in range(6) for label, texts in QUESTIONS.items() if i < len(texts)]


def allennlp(*args: str) -> subprocess.CompletedProcess:
    """`python -m allennlp ...` from the repository root, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "allennlp", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _config(shipped: str, tiny_models: Dict[str, str], folder: Path, data: str, **reader: Any) -> str:
    """The shipped config on a tiny model and `data` (also the validation data), its own
    validation data loader kept (the quickstart's bucket sampler orders batches by length), at
    a learning rate at which one epoch predicts more than one label."""
    path = tiny_config(os.path.join(CONFIGS, shipped), tiny_models, str(folder), data=data, epochs=1)
    with open(path) as handle:
        config = json.load(handle)
    original = Params.from_file(os.path.join(CONFIGS, shipped)).as_dict(quiet=True)
    if "validation_data_loader" in original:
        config["validation_data_loader"] = original["validation_data_loader"]
    config.pop("test_data_path", None)
    config["evaluate_on_test"] = False
    config["trainer"]["optimizer"]["lr"] = 1e-2
    config["dataset_reader"].update(reader)
    with open(path, "w") as handle:
        json.dump(config, handle, indent=2)
    return path


def train_six_class_archives(tiny_models: Dict[str, str], folder: Path) -> Dict[str, str]:
    """Writes the data files, trains both models; returns the paths of the data files
    (`own_data`, `trec_data`), the archives (`basic`, `verbalizer`) and their runs
    (`basic_run`, `verbalizer_run`)."""
    own = folder / "questions.tsv"
    own.write_text("question\tlabel\n" + "".join(f"{text}\t{label}\n" for label, text in ROWS))
    trec = folder / "trec.tsv"
    trec.write_text("".join(f"{label}\t{text}\n" for label, text in ROWS))
    made = {"own_data": str(own), "trec_data": str(trec)}
    for name, shipped, data, reader in (
        ("basic", "quickstart.jsonnet", own,
         {"text_columns": ["question"], "labels": LABELS, "label_names": OWN_NAMES}),
        ("verbalizer", "roberta-large/trec_full-data.jsonnet", trec, {}),
    ):
        (folder / name).mkdir()
        config = _config(shipped, tiny_models, folder / name, str(data), **reader)
        ok(allennlp("train", config, "-s", str(folder / name / "run")))
        made[name] = str(folder / name / "run" / "model.tar.gz")
        made[f"{name}_run"] = str(folder / name / "run")
    return made


def jsonl(path: Any) -> List[Dict[str, Any]]:
    with open(path) as handle:
        return [json.loads(line) for line in handle.read().splitlines()]
