"""
Several late-prompt tasks over one backbone, predicted together: one backbone in memory, one
run of the shared lower layers per batch for the tasks that read the same input ids.

Below its prompt layer a late-prompt model is the frozen, task-independent backbone, so for
tasks whose readers produce the same token ids, layers 1..k_min (k_min: the smallest prompt
layer among them) compute the same states for every task. `MultiTaskPredictor` runs them once
and each task continues from there with its own remaining lower layers, its generator, its
upper layers and its head (`LowerStates`, `LatePromptTransformerEmbedder.forward`). Each
task's output is exactly what its own `lpt_classifier` predictor gives for the same batch.
"""
import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import JsonDict
from allennlp.data import Batch
from allennlp.models import Model
from allennlp.models.archival import load_archive
from allennlp.nn import util

from allennlp_lpt.core import resolve_model_name
from allennlp_lpt.core.stacks import LowerStates
from allennlp_lpt.data.dataset_readers import TsvClassificationReader
from allennlp_lpt.models import LatePromptClassifier
from allennlp_lpt.modules.token_embedders import LatePromptTransformerEmbedder
from allennlp_lpt.predictors.lpt_classifier import LatePromptClassifierPredictor
from allennlp_lpt.predictors.outputs import separate

logger = logging.getLogger(__name__)


@dataclass
class Task:
    """One archive's predictor, under the name its outputs are given."""

    name: str
    archive: str
    predictor: LatePromptClassifierPredictor
    embedder: LatePromptTransformerEmbedder

    @property
    def model(self) -> Model:
        return self.predictor._model

    @property
    def prompt_layer(self) -> int:
        return self.embedder.prompt_layer


@dataclass
class TaskGroup:
    """Tasks whose inputs are the same token ids; `shared_layer` is the last layer they share
    (None: the group's one task runs its own lower pass, see `why_alone`)."""

    tasks: List[Task]
    shared_layer: Optional[int]
    why_alone: str = ""

    def describe(self) -> str:
        names = ", ".join(f"{task.name} (prompt layer {task.prompt_layer})" for task in self.tasks)
        if self.shared_layer is None:
            return f"{names}: its own lower pass ({self.why_alone})"
        return f"{names}: one pass of layers 1..{self.shared_layer} shared"


def task_names(archives: Sequence[str], names: Optional[Sequence[str]] = None) -> List[str]:
    """
    `names`, or each archive's file name without its extension; where those collide (AllenNLP
    names every archive `model.tar.gz`), the name of the folder holding it (or as much of the
    folder's path as tells them apart).
    """
    if names is not None:
        if len(names) != len(archives) or len(set(names)) != len(names):
            raise ConfigurationError(
                f"--names: give {len(archives)} distinct names, one per archive, got {list(names)}."
            )
        return list(names)

    def stem(path: str) -> str:
        base = os.path.basename(path)
        for extension in (".tar.gz", ".tgz", ".tar"):
            if base.endswith(extension):
                return base[: -len(extension)]
        return os.path.splitext(base)[0]

    chosen = [stem(path) for path in archives]
    folders = [os.path.dirname(os.path.abspath(path)).strip(os.sep).split(os.sep) for path in archives]
    depth = 1
    # The shortest tail of the folders' paths that tells them apart: runs/sst2, runs/trec ->
    # sst2, trec; a/run, b/run -> a/run, b/run.
    while len(set(chosen)) < len(chosen) and depth <= max(len(parts) for parts in folders):
        chosen = ["/".join(parts[-depth:]) for parts in folders]
        depth += 1
    if len(set(chosen)) < len(chosen):
        raise ConfigurationError(
            f"the archives {list(archives)} give the same task names {chosen}: name them with "
            f"--names A B ..."
        )
    return chosen


def _late_prompt_embedder(model: Model, archive: str) -> LatePromptTransformerEmbedder:
    embedders = [m for m in model.modules() if isinstance(m, LatePromptTransformerEmbedder)]
    if len(embedders) != 1:
        raise ConfigurationError(
            f"{archive}: not a late-prompt model (it holds {len(embedders)} late_prompt_transformer "
            f"embedders, not one); only late-prompt archives share a backbone."
        )
    return embedders[0]


def input_signature(reader: Any) -> Optional[Tuple[Any, ...]]:
    """What decides the token ids a reader makes of a prediction input: two readers with the
    same signature give the same ids. None for readers this cannot tell of."""
    if not isinstance(reader, TsvClassificationReader):
        return None
    encoder = reader.encoder
    return (
        resolve_model_name(reader.model_name), encoder.causal, encoder.template,
        encoder.max_length, encoder.reserve, tuple(encoder.prefix), len(reader.placeholder_names),
    )


def _shares_lower_layers(task: Task) -> Optional[str]:
    """None if the task can continue from shared lower states; else why not."""
    model = task.model
    if isinstance(model, LatePromptClassifier) and model._causal:
        return "generative scoring runs its answers through the lower layers too"
    return None


class MultiTaskPredictor:
    """
    Predicts with several late-prompt archives of one backbone (same `model_name` and
    `backbone_dtype`) over the same inputs.

    The archives' models read one copy of the frozen backbone in memory (loaded archives share
    it; on a GPU they are moved in one call, which keeps it one copy). Tasks whose readers make
    the same token ids of an input form a group: per batch, the group runs the lower layers up
    to its smallest prompt layer once, and each task continues from there. Generative scoring
    (`late_prompt_classifier` on a causal model) puts its answers into the lower layers, so such
    a task runs its own lower pass. `groups` says how the tasks were grouped.

    # Parameters

    tasks : `List[Task]`
        Loaded predictors; see `from_archives`.
    """

    def __init__(self, tasks: List[Task]) -> None:
        if not tasks:
            raise ConfigurationError("MultiTaskPredictor needs at least one archive.")
        self.tasks = tasks
        self._check_one_backbone()
        self.groups = self._group()
        for task in tasks:
            # A group's batch is indexed once, with its first task's vocabulary; each task's
            # tokenizer vocabulary goes into its own (what its first prediction would do), so
            # that every model turns the ids back into tokens.
            for indexer in getattr(task.predictor._dataset_reader, "token_indexers", {}).values():
                add = getattr(indexer, "_add_encoding_to_vocabulary_if_needed", None)
                if add is not None:
                    add(task.model.vocab)

    @classmethod
    def from_archives(
        cls,
        archives: Sequence[str],
        *,
        names: Optional[Sequence[str]] = None,
        cuda_device: int = -1,
        predictor_name: str = "lpt_classifier",
    ) -> "MultiTaskPredictor":
        """
        Loads each archive (full or lightweight) with its validation reader and the
        `lpt_classifier` predictor, as `allennlp predict ARCHIVE --predictor lpt_classifier`
        does, then moves all models to `cuda_device` at once.
        """
        from allennlp.predictors import Predictor

        task_list = []
        for name, archive in zip(task_names(archives, names), archives):
            loaded = load_archive(archive, cuda_device=-1)  # moved below, all in one call
            predictor = Predictor.from_archive(loaded, predictor_name)
            if not isinstance(predictor, LatePromptClassifierPredictor):
                raise ConfigurationError(f"{archive}: the predictor must be lpt_classifier.")
            task_list.append(Task(name, archive, predictor, _late_prompt_embedder(predictor._model, archive)))
        if cuda_device >= 0:
            # One conversion call for every model: their shared frozen weights become one copy
            # on the device (PretrainedPart converts each shared tensor once per call).
            torch.nn.ModuleList([task.model for task in task_list]).cuda(cuda_device)
        return cls(task_list)

    def _check_one_backbone(self) -> None:
        first = self.tasks[0]
        for task in self.tasks[1:]:
            for what, ours, theirs in (
                ("model_name", resolve_model_name(first.embedder.model_name),
                 resolve_model_name(task.embedder.model_name)),
                ("backbone_dtype", first.embedder.backbone_dtype, task.embedder.backbone_dtype),
            ):
                if ours != theirs:
                    raise ConfigurationError(
                        f"{first.archive} and {task.archive} have different backbones "
                        f"({what} {ours!r} and {theirs!r}): lpt-predict-multi runs archives of "
                        f"one backbone together; predict the others separately."
                    )

    def _group(self) -> List[TaskGroup]:
        groups: List[TaskGroup] = []
        by_signature: Dict[Tuple[Any, ...], TaskGroup] = {}
        for task in self.tasks:
            reason = _shares_lower_layers(task)
            signature = input_signature(task.predictor._dataset_reader)
            if signature is None and reason is None:
                reason = "its reader is not an lpt_tsv / lpt_task reader"
            if reason is not None:
                groups.append(TaskGroup([task], None, reason))
                continue
            group = by_signature.get(signature)  # type: ignore[arg-type]
            if group is None:
                group = by_signature[signature] = TaskGroup([], 0)  # type: ignore[index]
                groups.append(group)
            group.tasks.append(task)
        for group in groups:
            if group.shared_layer is not None:
                group.shared_layer = min(task.prompt_layer for task in group.tasks)
                self._check_shared_weights(group)
        return groups

    @staticmethod
    def _check_shared_weights(group: TaskGroup) -> None:
        """Every task of the group must compute the shared layers with the same weights (an
        archive trained on other weights under the same name holds copies of its own)."""
        first = group.tasks[0].embedder.stack
        layer = group.shared_layer or 0
        reference = [p.data_ptr() for p in first.embeddings.parameters()] + [
            p.data_ptr() for l in list(first.layers)[:layer] for p in l.parameters()]
        for task in group.tasks[1:]:
            stack = task.embedder.stack
            pointers = [p.data_ptr() for p in stack.embeddings.parameters()] + [
                p.data_ptr() for l in list(stack.layers)[:layer] for p in l.parameters()]
            if pointers != reference:
                raise ConfigurationError(
                    f"{task.archive}: its frozen lower layers are not the backbone weights "
                    f"{group.tasks[0].archive} reads (an archive trained on other weights under "
                    f"the same model_name, or a model moved to a device on its own); predict it "
                    f"separately."
                )

    def describe_groups(self) -> str:
        lines = [f"{len(self.tasks)} task(s) over {self.tasks[0].embedder.model_name!r}, "
                 f"{len(self.groups)} input group(s):"]
        lines += [f"  group {i + 1}: {group.describe()}" for i, group in enumerate(self.groups)]
        return "\n".join(lines)

    def check_inputs(self, inputs: Iterable[Tuple[str, JsonDict]]) -> None:
        """Raises the `lpt_classifier` predictor's error for the first input any task's reader
        refuses; `inputs` are (where, JSON) pairs, e.g. ("in.jsonl:3", {...})."""
        for where, json_dict in inputs:
            for task in self.tasks:
                try:
                    task.predictor._json_to_instance(json_dict)
                except ValueError as error:
                    raise ValueError(f"{where}: {error} (task {task.name})") from None

    def predict_batch_json(self, inputs: List[JsonDict]) -> List[Dict[str, JsonDict]]:
        """
        One output per input: task name -> what that task's `lpt_classifier` predictor's
        `predict_batch_json(inputs)` gives for it.
        """
        outputs: List[Dict[str, JsonDict]] = [{} for _ in inputs]
        for group in self.groups:
            for task, task_outputs in self._predict_group(group, inputs):
                for output, task_output in zip(outputs, task_outputs):
                    output[task.name] = task_output
        # In the order the archives were given.
        order = [task.name for task in self.tasks]
        return [{name: output[name] for name in order} for output in outputs]

    def _predict_group(self, group: TaskGroup, inputs: List[JsonDict]):
        first = group.tasks[0]
        # Tokenized once for the group: its readers make the same ids (`input_signature`).
        instances = [first.predictor._json_to_instance(json_dict) for json_dict in inputs]
        for instance in instances:
            first.predictor._dataset_reader.apply_token_indexers(instance)
        with torch.no_grad():
            device = first.model._get_prediction_device()
            batch = Batch(instances)
            batch.index_instances(first.model.vocab)
            model_input = util.move_to_device(batch.as_tensor_dict(), device)
            lower_states = None
            if group.shared_layer is not None:
                tokens = model_input["tokens"]["tokens"]
                states = first.embedder.stack.states_at(
                    tokens["token_ids"], tokens["mask"], tokens.get("type_ids"), layer=group.shared_layer
                )
                lower_states = LowerStates(states, group.shared_layer)
            for task in group.tasks:
                task_input = _with_lower_states(model_input, lower_states)
                raw = task.model.make_output_human_readable(task.model(**task_input))
                yield task, [
                    task.predictor.prediction(output, instance, given)
                    for output, instance, given in zip(separate(raw, len(instances), task.model), instances, inputs)
                ]


def _with_lower_states(model_input: Dict[str, Any], lower_states: Optional[LowerStates]) -> Dict[str, Any]:
    """A copy of the batch whose text field carries `lower_states` for the embedder."""
    if lower_states is None:
        return model_input
    tokens = dict(model_input["tokens"]["tokens"], lower_states=lower_states)
    return dict(model_input, tokens={"tokens": tokens})
