import argparse
import logging
import os

from allennlp.commands.subcommand import Subcommand

from allennlp_lpt.data.few_shot import make_splits
from allennlp_lpt.data.tasks import TASKS

logger = logging.getLogger(__name__)

DEFAULT_SEEDS = [13, 21, 42, 87, 100]


@Subcommand.register("lpt-few-shot")
class FewShot(Subcommand):
    """`allennlp lpt-few-shot`: writes the paper's few-shot splits (K examples in total)."""

    # AllenNLP then gives the subcommand --include-package (repeatable) and imports the plugins.
    requires_plugins = True

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Draws K training examples in total (stratified by class frequency, largest-remainder "
            "rounding, every class at least once when K allows) and a dev set of further "
            "training examples, stratified the same way, for each seed. Writes "
            "OUTPUT/TASK/K-SEED/train.tsv and dev.tsv in the input's format. The original dev or "
            "test file serves as the test split."
        )
        subparser = parser.add_parser(self.name, description=description, help="Write few-shot splits.")
        subparser.add_argument("--input", required=True, help="the full training file")
        subparser.add_argument("--format", required=True, choices=["glue-tsv", "label-tsv"])
        subparser.add_argument("--task", required=True, help="the task's name (names the output folder)")
        subparser.add_argument("--k", type=int, required=True, help="training examples in total")
        subparser.add_argument("--seeds", type=int, nargs="+", default=DEFAULT_SEEDS)
        subparser.add_argument("--output", required=True, help="the folder to write into")
        subparser.add_argument("--dev-size", type=int, default=1000)
        subparser.add_argument(
            "--label-column", default=None,
            help="glue-tsv: the label column (default: the task's, else 'label')",
        )
        subparser.set_defaults(func=_run)
        return subparser


def _run(args: argparse.Namespace) -> None:
    task = TASKS.get(args.task.lower())
    label_column = args.label_column or (task.label_column if task and task.label_column else "label")
    folders = make_splits(
        input_path=args.input, fmt=args.format, task=args.task, k=args.k, seeds=args.seeds,
        output=args.output, label_column=label_column, dev_size=args.dev_size,
    )
    for folder in folders:
        for name in ("train.tsv", "dev.tsv"):
            path = os.path.join(folder, name)
            with open(path) as handle:
                rows = sum(1 for _ in handle) - (1 if args.format == "glue-tsv" else 0)
            print(f"wrote {path}: {rows} examples, {_size(os.path.getsize(path))}")


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"
