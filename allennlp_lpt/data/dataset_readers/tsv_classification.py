import bz2
import gzip
import json
import logging
import lzma
import os
import zlib
from collections import Counter
from typing import IO, Dict, Iterable, Iterator, List, Optional, Tuple

from allennlp.common.checks import ConfigurationError
from allennlp.common.file_utils import cached_path
from allennlp.data import DatasetReader, Instance, Token
from allennlp.data.fields import Field, LabelField, TextField
from allennlp.data.token_indexers import PretrainedTransformerIndexer
from transformers import AutoTokenizer, PretrainedConfig

from allennlp_lpt.core import (
    family_for_config,
    family_for_model,
    load_backbone_config,
    resolve_model_name,
)
from allennlp_lpt.data.fields import CacheKeyedTextField
from allennlp_lpt.data.fields.ordered_label_field import OrderedLabelField
from allennlp_lpt.data.sourced_instance import SourcedInstance
from allennlp_lpt.data.tasks import get_task, split_answer_template
from allennlp_lpt.data.templates import InputEncoder, TemplateError
from allennlp_lpt.option_types import TypedOptions

logger = logging.getLogger(__name__)

FORMATS = ("glue-tsv", "label-tsv")
# The default `max_length`, or the model's own limit where that is lower.
DEFAULT_MAX_LENGTH = 512


def checked_max_length(
    max_length: Optional[int], model_name: str, config: PretrainedConfig, *, key: str
) -> int:
    """
    `max_length`, or the default for `model_name` (512, or the model's limit where that is
    lower). A value above the number of positions the model has is clamped to that limit, with
    one warning naming `key`, the model and its limit, when the reader is built: the embeddings
    would otherwise fail on the first batch that long. (Clamped rather than refused, so that
    archives whose saved configs carry an earlier default, e.g. 512 for any model, keep loading.)
    """
    limit = family_for_config(config, model_name, key="dataset_reader.model_name").max_positions(config)
    if max_length is None:
        return min(DEFAULT_MAX_LENGTH, limit)
    if max_length < 1:
        raise ConfigurationError(f"{key}={max_length}: give a positive number of tokens.")
    if max_length > limit:
        logger.warning(
            "%s=%d is more than %r (%s) has positions for: it takes at most %d tokens, special "
            "tokens included. Inputs are truncated to %d; set %s to %d or less to silence this.",
            key, max_length, model_name, config.model_type, limit, limit, key, limit,
        )
        return limit
    return max_length


def missing_file_message(file_path: str) -> str:
    """
    What to say when `file_path` does not exist. AllenNLP reads the config's data paths on the
    reader's behalf without saying which key named the file, so the message names the keys it
    may be.
    """
    return (
        f"{file_path!r}: no such file (relative paths are read from {os.getcwd()}). Fix the path "
        f"in the config (train_data_path, validation_data_path or test_data_path) or the "
        f"command's input file, e.g. -o '{{\"validation_data_path\": \"path/to/file.tsv\"}}'."
    )


def checked_label_names(
    label_names: Optional[Dict[str, str]], labels: Optional[List[str]]
) -> Optional[Dict[str, str]]:
    """`label_names` as label (str) -> name, checked to name exactly the declared `labels`."""
    if label_names is None:
        return None
    if not isinstance(label_names, dict) or not all(
        isinstance(name, str) and name.strip() for name in label_names.values()
    ):
        raise ConfigurationError(
            f"dataset_reader.label_names={label_names!r}: give a mapping label -> name, e.g. "
            f'{{"0": "negative", "1": "positive"}}.'
        )
    if labels is None:
        raise ConfigurationError(
            "dataset_reader.label_names needs dataset_reader.labels, the label set in the order "
            f"the model's probabilities follow, e.g. \"dataset_reader.labels\": "
            f"{json.dumps([str(label) for label in label_names])}."
        )
    names = {str(label): name for label, name in label_names.items()}
    unknown = [label for label in names if label not in labels]
    unnamed = [label for label in labels if label not in names]
    if unknown or unnamed:
        problems = ([f"{unknown} are not labels"] if unknown else []) + (
            [f"{unnamed} have no name"] if unnamed else [])
        raise ConfigurationError(
            f"dataset_reader.label_names must name every label of dataset_reader.labels "
            f"{labels} and no other: {'; '.join(problems)}."
        )
    return names


# Compressed files are recognised by their first bytes, whatever their name.
_DECOMPRESSORS = {b"\x1f\x8b": ("gzip", gzip.open), b"BZh": ("bzip2", bz2.open), b"\xfd7zXZ\x00": ("xz", lzma.open)}
_UNREAD_CONTAINERS = {b"PK\x03\x04": "a zip archive", b"\x28\xb5\x2f\xfd": "zstd-compressed"}


def _open_data_file(resolved: str, file_path: str) -> Tuple[IO[bytes], Optional[str]]:
    """
    The file's bytes, decompressed where it is gzip, bzip2 or xz (as pandas and AllenNLP's
    own readers read a `.tsv.gz`), and the compression's name (None for a plain file). A zip or
    zstd file is a ConfigurationError naming the file.
    """
    with open(resolved, "rb") as probe:
        start = probe.read(6)
    for magic, what in _UNREAD_CONTAINERS.items():
        if start.startswith(magic):
            raise ConfigurationError(
                f"{file_path}: the file is {what}, which this reader does not unpack (it reads "
                f"plain, gzip, bzip2 and xz files). Unpack it and give the TSV file inside."
            )
    for magic, (name, opener) in _DECOMPRESSORS.items():
        if start.startswith(magic):
            return opener(resolved, "rb"), name
    return open(resolved, "rb"), None


def _has_content(reader: "TsvClassificationReader", file_path: str) -> bool:
    return any(text.strip() for _, text in reader._lines(file_path))


@DatasetReader.register("lpt_tsv")
class TsvClassificationReader(TypedOptions, DatasetReader):
    """
    Sentence and sentence-pair classification from TSV files, tokenized for one pretrained
    model, optionally through a prompt template.

    Two formats: `"glue-tsv"` (a header row naming the columns, as in the GLUE files; the texts
    are the `text_columns`, the label the `label_column`) and `"label-tsv"` (no header; each row is
    `label<TAB>text`). Every bad row (missing column, empty text, unknown label) is an error
    naming the file and line, unless `skip_invalid` is set, which skips and counts them.

    Registered as a `DatasetReader` with name "lpt_tsv".

    # Parameters

    model_name : `str`
        The model whose tokenizer to use (the same as the embedder's).
    format : `str`, optional (default = `"glue-tsv"`)
    text_columns : `List[str]`, optional (default = `["sentence"]`)
        One column (single sentence) or two (a pair), for `"glue-tsv"`.
    label_column : `str`, optional (default = `"label"`)
    labels : `List[str]`, optional
        The valid labels; a row with another is an error. Default: any non-empty label. Given,
        it is also the order of the model's label vocabulary, and so of `probs` in its outputs
        (without it, AllenNLP's order: the most frequent label first).
    label_names : `Dict[str, str]`, optional
        Label -> what it means (e.g. `{"0": "negative", "1": "positive"}`), a name for every one
        of `labels` (which it needs). Predictions carry it as `label_name`; saved with the reader's
        config, it travels in the archive.
    template : `str`, optional
        A prompt template (`{s}` for one text, `{a}` and `{b}` for a pair, `<mask>` for the
        masked-LM verbalizer), e.g. `"{s} . It was <mask> ."`. For GPT-2 the template ends where
        `{label}` marks the answer (e.g. `"{s} It was {label} ."`): the reader keeps what comes
        before it and leaves room for the answer word, the rest and eos, which the
        `late_prompt_classifier` appends. Without a template, the tokenizer's special tokens
        join the texts.
    max_length : `int`, optional (default = 512, or the model's limit where that is lower)
        Longer inputs lose text tokens (longest text first), never template tokens. A value
        above the number of positions the model has is lowered to that limit, with a warning.
    skip_invalid : `bool`, optional (default = `False`)
    cache_keys : `bool`, optional (default = `False`)
        Give each instance, computed on the host once, the key and length under which a
        `late_prompt_transformer` embedder with `cache: true` stores its lower-layer states
        (a `CacheKeyedTextField`), so a cached training step never waits for the GPU to key
        its batch. Only for models whose embedder is `late_prompt_transformer`.
    """

    def __init__(
        self,
        model_name: str,
        *,
        format: str = "glue-tsv",
        text_columns: Optional[List[str]] = None,
        label_column: str = "label",
        labels: Optional[List[str]] = None,
        template: Optional[str] = None,
        max_length: Optional[int] = None,
        skip_invalid: bool = False,
        cache_keys: bool = False,
        label_names: Optional[Dict[str, str]] = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.cache_keys = cache_keys
        if format not in FORMATS:
            raise ConfigurationError(f"format={format!r} is not one of {', '.join(FORMATS)}.")
        self.text_columns = list(text_columns or ["sentence"])
        if len(self.text_columns) not in (1, 2):
            raise ConfigurationError(
                f"text_columns={self.text_columns}: give one column or two (a pair)."
            )
        self.model_name = model_name
        self.format = format
        self.label_column = label_column
        self.labels = None if labels is None else [str(label) for label in labels]
        self.label_names = checked_label_names(label_names, self.labels)
        self.skip_invalid = skip_invalid
        # Without declared labels: where each label was first seen, and the first file this
        # reader read (in `allennlp train`, the training data), for `_label_problem`.
        self._label_origins: Dict[str, Tuple[str, int]] = {}
        self._first_file: Optional[str] = None
        config = load_backbone_config(model_name, key="dataset_reader.model_name")
        family = family_for_config(config, model_name, key="dataset_reader.model_name")
        max_length = checked_max_length(max_length, model_name, config, key="dataset_reader.max_length")
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_model_name(model_name))
        reserve = 0
        if template is not None and "{label}" in template:
            if not family.is_causal:
                raise ConfigurationError(
                    f"dataset_reader.template={template!r}: {{label}} is for GPT-2's generative "
                    f"scoring; a masked LM's template marks the answer with <mask>."
                )
            template, suffix = split_answer_template(template)
            # The model appends one label token, the suffix and eos.
            reserve = 2 + len(self.tokenizer.encode(suffix, add_special_tokens=False))
        elif template is not None and not family.is_causal and template.count("<mask>") != 1:
            raise ConfigurationError(
                f"dataset_reader.template={template!r}: a masked LM's template needs exactly one "
                f"<mask> (where the verbalizer reads the label), e.g. '{{s}} . It was <mask> .'"
            )
        try:
            self.encoder = InputEncoder(
                self.tokenizer,
                causal=family.is_causal,
                template=template,
                max_length=max_length,
                reserve=reserve,
            )
        except TemplateError as error:
            raise ConfigurationError(f"dataset_reader.template: {error}") from error
        self.placeholder_names = ["s"] if len(self.text_columns) == 1 else ["a", "b"]
        self.token_indexers = {
            "tokens": PretrainedTransformerIndexer(resolve_model_name(model_name))
        }

    def _lines(self, file_path: str) -> Iterator[Tuple[int, str]]:
        """(line number, text) of every line, decoded as UTF-8 (a leading BOM is dropped); of the
        decompressed text where the file is gzip, bzip2 or xz."""
        try:
            resolved = cached_path(file_path)
        except FileNotFoundError as error:
            raise ConfigurationError(missing_file_message(file_path)) from error
        handle, compression = _open_data_file(resolved, file_path)
        with handle:
            numbered = enumerate(handle, start=1)
            while True:
                try:
                    number, raw = next(numbered)
                except StopIteration:
                    break
                except (EOFError, OSError, zlib.error, lzma.LZMAError) as error:
                    if compression is None:
                        raise
                    raise ConfigurationError(
                        f"{file_path}: the {compression} file does not decompress ({type(error).__name__}: "
                        f"{error}). It is damaged or incomplete, e.g. a copy or download cut short: "
                        f"fetch it again, or give it uncompressed."
                    ) from None
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise ConfigurationError(
                        f"{file_path}:{number}: the line is not UTF-8 (byte {raw[error.start]:#04x} "
                        f"at column {error.start + 1}). Save the file as UTF-8."
                    ) from None
                if number == 1 and text.startswith("\ufeff"):
                    text = text[1:]  # a byte-order mark, as some editors write
                yield number, text.rstrip("\r\n")

    def _rows(self, file_path: str) -> Iterable[tuple]:
        """Yields (line number, {text column: text}, label), or (line number, None, problem),
        for every data row."""
        lines = self._lines(file_path)
        if self.format == "glue-tsv":
            first = next(lines, None)
            if first is None:
                return
            header = first[1].split("\t")
            missing = [c for c in self.text_columns + [self.label_column] if c not in header]
            if missing:
                raise ConfigurationError(
                    f"{file_path}:1: the header {header} lacks the column(s) {missing} "
                    f"(dataset_reader.text_columns / label_column)."
                )
            positions = [header.index(c) for c in self.text_columns]
            label_position = header.index(self.label_column)
            width = len(header)
        else:
            positions, label_position, width = [1], 0, 2
        for line, text in lines:
            if not text.strip():
                continue
            row = text.split("\t")
            if len(row) != width:
                expected = f"the header has {width}" if self.format == "glue-tsv" else "expected 2 (label<TAB>text)"
                yield line, None, (
                    f"has {len(row)} column(s), {expected} (a tab inside a text, or a missing or "
                    f"extra field)"
                )
                continue
            texts = {c: row[p] for c, p in zip(self.text_columns, positions)}
            yield line, texts, row[label_position]

    def _read(self, file_path: str) -> Iterable[Instance]:
        if self._first_file is None:
            self._first_file = file_path
        skipped = 0
        skipped_labels: Counter = Counter()  # rows skipped for a label outside `labels`
        read = 0
        for line, texts, label in self._rows(file_path):
            problem = label if texts is None else self._row_problem(texts, label)
            fix = "Fix the row, or set dataset_reader.skip_invalid to skip such rows."
            if problem is None:
                problem, fix = self._label_problem(file_path, line, label) or (None, fix)
                if problem is not None and self.labels is not None:
                    skipped_labels[label] += 1
            if problem is None:
                try:
                    instance = self.text_to_instance(*texts.values(), label=label)  # type: ignore
                except TemplateError as error:
                    problem = str(error)
                else:
                    read += 1
                    if isinstance(instance, SourcedInstance):
                        instance.file, instance.line = file_path, line  # for predictions to echo
                    yield instance
                    continue
            if not self.skip_invalid:
                raise ConfigurationError(f"{file_path}:{line}: the row {problem}. {fix}")
            skipped += 1
        if skipped:
            outside = ", ".join(f"{label!r} ({count})" for label, count in sorted(skipped_labels.items()))
            logger.warning(
                "Skipped %d invalid row(s) of %s (skip_invalid is set)%s.", skipped, file_path,
                f", {sum(skipped_labels.values())} of them for labels outside dataset_reader.labels: "
                f"{outside}" if skipped_labels else "",
            )
        if read == 0:
            why = f"all {skipped} row(s) were invalid and skipped" if skipped else (
                "it has a header and no rows" if self.format == "glue-tsv" and _has_content(self, file_path)
                else "it is empty")
            raise ConfigurationError(f"{file_path}: no instances: {why}. Give a file with examples.")

    def _row_problem(self, texts: Dict[str, str], label: str) -> Optional[str]:
        for column, text in texts.items():
            if not text.strip():
                return f"has an empty text in column {column!r}"
        if not label.strip():
            return "has an empty label"
        return None

    def _label_problem(self, file_path: str, line: int, label: str) -> Optional[Tuple[str, str]]:
        """
        What is wrong with a row's (non-empty) label, and the fix, or None.

        With declared `labels`, a label outside them. Without, a label that differs from one
        seen before only in case or surrounding spaces (`'Pos'`, `'pos '` after `'pos'`), which
        would silently become a class of its own. A label first seen in a later file than the
        first this reader read (a validation label the training data lacks) is a class the
        model never trains on: a warning naming the file and line, once per label.
        """
        def same(a: str, b: str) -> bool:
            return a.strip().casefold() == b.strip().casefold()

        if self.labels is not None:
            if label in self.labels:
                return None
            problem = f"has the label {label!r}, which is not one of {self.labels}"
            near = next((known for known in self.labels if same(known, label)), None)
            if near is not None:
                return f"{problem}: it differs from {near!r} only in case or surrounding spaces", f"Write it as {near!r}."
            if getattr(self, "task", None) is not None:  # lpt_task: the task's label set
                return problem, "Fix the row, or set dataset_reader.skip_invalid to skip such rows."
            # (skip_invalid skips the row: no need to read the file again for the fix)
            fix = "" if self.skip_invalid else self._declare_labels_fix(file_path)
            return f"{problem} (dataset_reader.labels)", fix
        if label in self._label_origins:
            return None
        for known, (known_file, known_line) in self._label_origins.items():
            if same(known, label):
                return (
                    f"has the label {label!r}, which differs from the label {known!r} "
                    f"({known_file}:{known_line}) only in case or surrounding spaces, so it would "
                    f"become a class of its own",
                    "Write the label one way in every file; if they are different classes, declare "
                    "dataset_reader.labels listing both.",
                )
        self._label_origins[label] = (file_path, line)
        if file_path != self._first_file:
            logger.warning(
                "%s:%d: the label %r is not in %s, the first file read (the training data): it "
                "becomes a class the model never trains on. Fix the row if it is a typo; declare "
                "dataset_reader.labels (with every class) if the class is meant.",
                file_path, line, label, self._first_file,
            )
        return None

    def _declare_labels_fix(self, file_path: str) -> str:
        """The fix for a label outside the declared `labels`: declaring the file's own labels
        (a multi-class file read with a binary config), unless they are too many to be classes."""
        counts = Counter(label for _, texts, label in self._rows(file_path) if texts is not None and label.strip())
        found = sorted(counts)
        if len(found) > 20:
            column = (
                f"dataset_reader.label_column ({self.label_column!r}) the label column"
                if self.format == "glue-tsv" else "the file label<TAB>text (dataset_reader.format)"
            )
            return f"The file has {len(found)} different labels (e.g. {found[:5]}): is {column}? Otherwise fix the row."
        overrides = json.dumps({"dataset_reader.labels": found})
        return (
            f"The file's labels are {found}: if those are its classes, declare them, e.g. "
            f"-o '{overrides}'; otherwise fix the row."
        )

    def text_to_instance(  # type: ignore[override]
        self, sentence: str, sentence2: Optional[str] = None, label: Optional[str] = None
    ) -> Instance:
        """
        # Parameters

        sentence : `str`
        sentence2 : `str`, optional
            The second text of a pair.
        label : `str`, optional
        """
        given = [sentence] if sentence2 is None else [sentence, sentence2]
        if len(given) != len(self.placeholder_names):
            raise ValueError(
                f"this reader expects {len(self.placeholder_names)} text(s) per instance "
                f"(text_columns={self.text_columns}), got {len(given)}"
            )
        # The rules of training data hold for every instance, predictions' included.
        for column, text in zip(self.text_columns, given):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"the text for {column!r} is empty or not a string: {text!r}")
        if label is not None and self.labels is not None and str(label) not in self.labels:
            raise ValueError(f"the label {label!r} is not one of {self.labels}")
        encoded = self.encoder.encode(dict(zip(self.placeholder_names, given)))
        tokens = [
            Token(text=text, text_id=token_id, type_id=type_id)
            for text, token_id, type_id in zip(
                self.tokenizer.convert_ids_to_tokens(encoded.token_ids),
                encoded.token_ids,
                encoded.type_ids,
            )
        ]
        if self.cache_keys:
            text_field: TextField = CacheKeyedTextField(tokens, label=None if label is None else str(label))
        else:
            text_field = TextField(tokens)
        fields: Dict[str, Field] = {"tokens": text_field}
        if label is not None:
            # With declared labels, the vocabulary lists them in their order (OrderedLabelField).
            fields["label"] = (
                LabelField(str(label)) if self.labels is None else OrderedLabelField(str(label), self.labels)
            )
        return SourcedInstance(fields, dict(zip(self.text_columns, given)))

    def apply_token_indexers(self, instance: Instance) -> None:
        instance.fields["tokens"].token_indexers = self.token_indexers  # type: ignore


@DatasetReader.register("lpt_task")
class TaskReader(TsvClassificationReader):
    """
    One of the paper's ten tasks (`sst-2`, `mr`, `mpqa`, `subj`, `trec`, `mnli`, `mrpc`, `qnli`,
    `qqp`, `rte`) in its standard files, with the task's default template for the model's family
    (`allennlp_lpt.data.tasks`). GLUE tasks read the GLUE TSV files (header row); MR, MPQA, Subj
    and TREC read headerless `label<TAB>text` files.

    Registered as a `DatasetReader` with name "lpt_task".

    # Parameters

    model_name : `str`
    task : `str`
    template : `str`, optional
        Overrides the task's template (see `lpt_tsv`).
    max_length : `int`, optional (default = 512, or the model's limit where that is lower)
    skip_invalid : `bool`, optional (default = `False`)
    cache_keys : `bool`, optional (default = `False`)
        See `lpt_tsv`.
    label_names : `Dict[str, str]`, optional
        Overrides the task's label names (see `lpt_tsv`; `allennlp_lpt.data.tasks`).
    """

    def __init__(
        self,
        model_name: str,
        task: str,
        *,
        template: Optional[str] = None,
        max_length: Optional[int] = None,
        skip_invalid: bool = False,
        label_names: Optional[Dict[str, str]] = None,
        **kwargs,
    ) -> None:
        spec = get_task(task, key="dataset_reader.task")
        causal = family_for_model(model_name).is_causal
        super().__init__(
            model_name,
            format=spec.format,
            text_columns=list(spec.text_columns),
            label_column=spec.label_column or "label",
            labels=list(spec.labels),
            template=template if template is not None else spec.template_for(causal),
            max_length=max_length,
            skip_invalid=skip_invalid,
            label_names=label_names if label_names is not None else spec.label_names,
            **kwargs,
        )
        self.task = spec
