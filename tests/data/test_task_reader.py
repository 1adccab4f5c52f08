"""The task readers on fixture files written for the test: every task, every bad row, truncation."""
import os

import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader
from transformers import AutoTokenizer

from allennlp_lpt.data.tasks import TASKS
from config_swap import task_fixture

GPT2_TASKS = [name for name, task in TASKS.items() if task.gpt2_template]


def reader(model_dir, **settings):
    return DatasetReader.from_params(Params({"type": "lpt_task", "model_name": model_dir, **settings}))


def decode(model_dir, instance):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return tokenizer.decode([t.text_id for t in instance["tokens"].tokens], clean_up_tokenization_spaces=False)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_reads_its_standard_file_with_the_masked_lm_template(tiny_models, task):
    instances = list(reader(tiny_models["roberta"], task=task).read(task_fixture(task)))
    assert len(instances) == 8 if task != "trec" else 12
    labels = {instance["label"].label for instance in instances}
    assert labels == set(TASKS[task].labels)
    text = decode(tiny_models["roberta"], instances[0])
    assert text.count("<mask>") == 1 and text.startswith("<s>") and text.endswith("</s>")


@pytest.mark.parametrize(
    "task,filled",
    [
        ("sst-2", "a warm and funny film . . It was <mask> ."),
        ("rte", "the film was great . ? <mask> , the movie was good ."),
        ("qqp", "the film was great . <mask> , the movie was good ."),
        ("trec", "<mask> : what is a film ?"),
    ],
)
def test_templates_tokenize_as_hf_tokenizes_the_filled_template(tiny_models, task, filled):
    """Piecewise tokenization (needed to truncate text only) equals HF on the whole string."""
    model_dir = tiny_models["roberta"]
    instance = next(iter(reader(model_dir, task=task).read(task_fixture(task))))
    ids = [t.text_id for t in instance["tokens"].tokens]
    assert ids == AutoTokenizer.from_pretrained(model_dir)(filled)["input_ids"]


@pytest.mark.parametrize("task", GPT2_TASKS)
def test_gpt2_input_is_bos_text_and_template_prefix(tiny_models, task):
    instances = list(reader(tiny_models["gpt2"], task=task).read(task_fixture(task)))
    text = decode(tiny_models["gpt2"], instances[0])
    assert text.startswith("<|endoftext|>")
    prefix = "It was" if "It was" in TASKS[task].gpt2_template else "They are"
    assert text.endswith(prefix)


def test_template_and_mask_survive_truncation(tiny_models):
    long = tiny_models["roberta"]
    short = list(reader(long, task="sst-2", max_length=12).read(task_fixture("sst-2")))
    for instance in short:
        text = decode(long, instance)
        assert len(instance["tokens"].tokens) <= 12
        assert text.endswith(". It was<mask> .</s>")
    pair = list(reader(long, task="rte", max_length=12).read(task_fixture("rte")))
    assert all("?<mask> ," in decode(long, instance) for instance in pair)


def test_gpt2_truncation_leaves_room_for_the_answer(tiny_models):
    instances = list(reader(tiny_models["gpt2"], task="sst-2", max_length=10).read(task_fixture("sst-2")))
    for instance in instances:
        # bos + text + " It was" + room for " great", " ." and eos
        assert len(instance["tokens"].tokens) <= 10 - 3
        assert decode(tiny_models["gpt2"], instance).endswith(" It was")


def test_an_input_that_cannot_fit_names_the_file_and_line(tiny_models):
    with pytest.raises(ConfigurationError, match=r"sst-2.tsv:2: .*no room for the text within max_length=5"):
        list(reader(tiny_models["roberta"], task="sst-2", max_length=5).read(task_fixture("sst-2")))


def test_template_and_label_words_can_be_overridden(tiny_models):
    custom = reader(tiny_models["roberta"], task="sst-2", template="<mask> ! {s}")
    instance = next(iter(custom.read(task_fixture("sst-2"))))
    assert decode(tiny_models["roberta"], instance).startswith("<s><mask> ! a warm")


BAD_ROWS = {
    "missing column": ("sentence\tlabel\ngood film\t1\nonly one column\n", r":3: the row has 1 column"),
    "unknown label": ("sentence\tlabel\ngood film\t1\nbad film\t7\n", r":3: the row has the label '7'"),
    "empty text": ("sentence\tlabel\ngood film\t1\n \t0\n", r":3: the row has an empty text"),
    "wrong label type": ("sentence\tlabel\ngood film\tpositive\n", r":2: the row has the label 'positive'"),
    "empty label": ("sentence\tlabel\ngood film\t\n", r":2: the row has an empty label"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_a_bad_row_is_an_error_naming_file_and_line(tiny_models, tmp_path, case):
    content, message = BAD_ROWS[case]
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match="bad.tsv" + message):
        list(reader(tiny_models["roberta"], task="sst-2").read(str(path)))


def test_skip_invalid_skips_and_counts(tiny_models, tmp_path, caplog):
    path = tmp_path / "bad.tsv"
    path.write_text("sentence\tlabel\ngood film\t1\nbad film\t7\n \t0\nfine film\t0\n")
    instances = list(reader(tiny_models["roberta"], task="sst-2", skip_invalid=True).read(str(path)))
    assert len(instances) == 2
    assert "Skipped 2 invalid row(s)" in caplog.text


def test_a_header_without_the_columns_names_them(tiny_models, tmp_path):
    path = tmp_path / "wrong.tsv"
    path.write_text("text\ttarget\nfine\t1\n")
    with pytest.raises(ConfigurationError, match=r"wrong.tsv:1: .*lacks the column\(s\) \['sentence', 'label'\]"):
        list(reader(tiny_models["roberta"], task="sst-2").read(str(path)))


def test_unknown_task_lists_the_known_ones(tiny_models):
    with pytest.raises(ConfigurationError, match="task='cola'.*sst-2"):
        reader(tiny_models["roberta"], task="cola")


def test_qqp_has_no_gpt2_template(tiny_models):
    with pytest.raises(ConfigurationError, match="no GPT-2 template"):
        reader(tiny_models["gpt2"], task="qqp")


def test_label_placeholder_is_only_for_gpt2(tiny_models):
    with pytest.raises(ConfigurationError, match="label"):
        reader(tiny_models["roberta"], task="sst-2", template="{s} It was {label} .")


def test_a_byte_order_mark_is_accepted(tiny_models, tmp_path):
    from allennlp.data import DatasetReader
    from allennlp.common import Params

    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufeffsentence\tlabel\ngood fun\t1\n".encode("utf-8"))
    reader = DatasetReader.from_params(Params({"type": "lpt_tsv", "model_name": tiny_models["roberta"]}))
    instances = list(reader.read(str(path)))
    assert [instance["label"].label for instance in instances] == ["1"]


def test_skip_invalid_with_nothing_valid_left_is_an_error(tiny_models, tmp_path):
    from allennlp.common import Params
    from allennlp.common.checks import ConfigurationError
    from allennlp.data import DatasetReader

    path = tmp_path / "bad.tsv"
    path.write_text("sentence\tlabel\n\t1\nx\t\n")
    reader = DatasetReader.from_params(Params({"type": "lpt_tsv", "model_name": tiny_models["roberta"],
                                               "skip_invalid": True}))
    with pytest.raises(ConfigurationError, match=r"bad.tsv: no instances: all 2 row\(s\) were invalid"):
        list(reader.read(str(path)))


def test_instances_for_prediction_follow_the_training_rules(tiny_models):
    from allennlp.common import Params
    from allennlp.data import DatasetReader

    reader = DatasetReader.from_params(Params({"type": "lpt_tsv", "model_name": tiny_models["roberta"],
                                               "labels": ["0", "1"]}))
    with pytest.raises(ValueError, match="the text for 'sentence' is empty"):
        reader.text_to_instance("   ")
    with pytest.raises(ValueError, match=r"the label '2' is not one of \['0', '1'\]"):
        reader.text_to_instance("good", label="2")
