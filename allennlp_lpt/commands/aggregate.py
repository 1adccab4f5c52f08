import argparse

from allennlp.commands.subcommand import Subcommand


@Subcommand.register("lpt-aggregate")
class Aggregate(Subcommand):
    """`allennlp lpt-aggregate DIR...`: mean ± std of each experiment over its seeds."""

    # AllenNLP then gives the subcommand --include-package (repeatable) and imports the plugins.
    requires_plugins = True

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Reads serialization directories (config.json and metrics.json), at or under the "
            "given folders, and writes a markdown table, one row per experiment: task, model, "
            "setting, a column for every config key that differs between the runs (the "
            "training seeds and few-shot data seeds aside: runs that differ only in those are "
            "averaged), metric, mean ± std over the runs (in percent), number of runs. The metric is the test metric "
            "(acc_and_f1 where present, else accuracy) or, without a test set, the best dev one. "
            "For MNLI, a metrics_mismatched.json beside metrics.json (from `allennlp evaluate "
            "... --output-file`) makes the metric the mean of matched and mismatched."
        )
        subparser = parser.add_parser(self.name, description=description, help="Aggregate runs over seeds.")
        subparser.add_argument("dirs", nargs="+")
        subparser.add_argument("--output", default=None, help="write the table here too")
        subparser.set_defaults(func=_run)
        return subparser


def _run(args: argparse.Namespace) -> None:
    from allennlp_lpt.experiments.aggregate import aggregate

    table = aggregate(args.dirs)
    print(table, end="")
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(table)
