"""
The paper's ten tasks: where their files keep texts and labels, their default templates,
verbalizers and metrics, and which file is the test split (docs/METHOD.md). This is the one
source of task knowledge: readers and models look tasks up here by name, and
`training_configs/common/lpt.libsonnet`'s test files and metrics are checked against it by
`tests/test_training_configs.py`. Configs may override any template or label word.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from allennlp.common.checks import ConfigurationError

SENTIMENT = {"0": "terrible", "1": "great"}
TREC_WORDS = {
    "0": "Description", "1": "Entity", "2": "Expression", "3": "Human", "4": "Location", "5": "Number",
}
# What each label means, for predictions (`label_name`): TREC's coarse question classes
# (DESC, ENTY, ABBR, HUM, LOC, NUM), the sentiment and subjectivity polarities, MRPC's and
# QQP's paraphrase judgements. Tasks whose labels are words already (MNLI, QNLI, RTE) have none.
SENTIMENT_NAMES = {"0": "negative", "1": "positive"}
TREC_NAMES = {
    "0": "description", "1": "entity", "2": "abbreviation", "3": "human", "4": "location", "5": "numeric",
}


@dataclass(frozen=True)
class Task:
    """
    # Parameters

    name : the task's name as configs give it (e.g. `"sst-2"`).
    format : `"glue-tsv"` (header row) or `"label-tsv"` (headerless `label<TAB>text`).
    text_columns : the header names of the text column(s) (`glue-tsv` only).
    label_column : the header name of the label column (`glue-tsv` only).
    labels : every valid label, as written in the files.
    template : the masked-LM template (`{s}`, or `{a}` and `{b}`, and `<mask>`).
    label_words : label -> verbalizer word for the masked-LM template.
    gpt2_template : the GPT-2 template (`{label}` marks the answer), None where the paper has none.
    gpt2_label_words : label -> answer word for GPT-2.
    metric : `"accuracy"` or `"acc_and_f1"` ((accuracy + F1) / 2, positive label "1").
    test_files : the files that serve as the test split, in the task's data folder (the first
        is the configs' `test_data_path`; MNLI's second, the mismatched set, is evaluated apart).
    label_names : label -> what it means (e.g. `"0"` -> `"negative"`), which predictions carry
        as `label_name`; None where the labels are words already.
    """

    name: str
    format: str
    text_columns: Tuple[str, ...]
    label_column: str
    labels: Tuple[str, ...]
    template: str
    label_words: Dict[str, str]
    gpt2_template: Optional[str] = None
    gpt2_label_words: Optional[Dict[str, str]] = None
    metric: str = "accuracy"
    test_files: Tuple[str, ...] = ("dev.tsv",)
    label_names: Optional[Dict[str, str]] = None

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    def template_for(self, causal: bool) -> str:
        if not causal:
            return self.template
        if self.gpt2_template is None:
            raise ConfigurationError(
                f"task {self.name!r} has no GPT-2 template in the paper; give "
                f"dataset_reader.template (and the model's label_words) yourself."
            )
        return self.gpt2_template

    def words_for(self, causal: bool) -> Dict[str, str]:
        return dict(self.gpt2_label_words if causal and self.gpt2_label_words else self.label_words)


def _sentence(name: str, words: Dict[str, str], gpt2: Optional[str], fmt: str,
              labels: Tuple[str, ...], test_files: Tuple[str, ...], names: Dict[str, str]) -> Task:
    glue = fmt == "glue-tsv"
    return Task(
        name=name, format=fmt,
        text_columns=("sentence",) if glue else ("text",), label_column="label" if glue else "",
        labels=labels, template="{s} . It was <mask> ." if name != "trec" else "<mask> : {s}",
        label_words=words, gpt2_template=gpt2, gpt2_label_words=words, test_files=test_files,
        label_names=names,
    )


TASKS: Dict[str, Task] = {
    task.name: task
    for task in [
        _sentence("sst-2", SENTIMENT, "{s} It was {label} .", "glue-tsv", ("0", "1"), ("dev.tsv",),
                  SENTIMENT_NAMES),
        _sentence("mr", SENTIMENT, "{s} It was {label} .", "label-tsv", ("0", "1"), ("test.tsv",),
                  SENTIMENT_NAMES),
        _sentence("mpqa", SENTIMENT, "{s} It was {label} .", "label-tsv", ("0", "1"), ("test.tsv",),
                  SENTIMENT_NAMES),
        _sentence("subj", {"0": "subjective", "1": "objective"}, "{s} It was {label} .",
                  "label-tsv", ("0", "1"), ("test.tsv",), {"0": "subjective", "1": "objective"}),
        _sentence("trec", TREC_WORDS, "{s} It was {label} .", "label-tsv",
                  tuple(TREC_WORDS), ("test.tsv",), TREC_NAMES),
        Task(
            name="mnli", format="glue-tsv", text_columns=("sentence1", "sentence2"),
            label_column="gold_label", labels=("contradiction", "entailment", "neutral"),
            template="{a} ? <mask> , {b}",
            label_words={"contradiction": "No", "entailment": "Yes", "neutral": "Maybe"},
            test_files=("dev_matched.tsv", "dev_mismatched.tsv"),
        ),
        Task(
            name="mrpc", format="glue-tsv", text_columns=("#1 String", "#2 String"),
            label_column="Quality", labels=("0", "1"), template="{a} ? <mask> , {b}",
            label_words={"0": "No", "1": "Yes"}, gpt2_template="{a} {b} They are {label} .",
            metric="acc_and_f1", label_names={"0": "not_equivalent", "1": "equivalent"},
        ),
        Task(
            name="qnli", format="glue-tsv", text_columns=("question", "sentence"),
            label_column="label", labels=("entailment", "not_entailment"), template="{a} ? <mask> , {b}",
            label_words={"entailment": "Yes", "not_entailment": "No"},
            gpt2_template="{a} {b} They are {label} .",
        ),
        Task(
            name="qqp", format="glue-tsv", text_columns=("question1", "question2"),
            label_column="is_duplicate", labels=("0", "1"), template="{a} <mask> , {b}",
            label_words={"0": "No", "1": "Yes"}, metric="acc_and_f1",
            label_names={"0": "not_duplicate", "1": "duplicate"},
        ),
        Task(
            name="rte", format="glue-tsv", text_columns=("sentence1", "sentence2"),
            label_column="label", labels=("entailment", "not_entailment"), template="{a} ? <mask> , {b}",
            label_words={"entailment": "Yes", "not_entailment": "No"},
            gpt2_template="{a} {b} They are {label} .",
        ),
    ]
}


def get_task(name: str, *, key: str = "task") -> Task:
    task = TASKS.get(name.lower())
    if task is None:
        raise ConfigurationError(f"{key}={name!r} is not a known task: use one of {', '.join(TASKS)}.")
    return task


def split_answer_template(template: str) -> Tuple[str, str]:
    """`"{s} It was {label} ."` -> (`"{s} It was"`, `" ."`): the context and the answer suffix."""
    if template.count("{label}") != 1:
        raise ConfigurationError(
            f"the GPT-2 template {template!r} must contain {{label}} exactly once (where the "
            f"answer word goes)."
        )
    before, after = template.split("{label}")
    return before.rstrip(), after
