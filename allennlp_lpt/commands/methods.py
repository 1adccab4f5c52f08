import argparse

from allennlp.commands.subcommand import Subcommand


@Subcommand.register("lpt-methods")
class Methods(Subcommand):
    """`allennlp lpt-methods`: every tuning method, with its defaults and their sources."""

    # AllenNLP then gives the subcommand --include-package (repeatable) and imports the plugins,
    # so methods registered by another package are listed too.
    requires_plugins = True

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Prints a markdown table of every registered tuning method (what lpt-compare, "
            "lpt-benchmark and the configs can use): the component that carries it, what "
            "trains, its default learning rate and the range a search draws from, its options "
            "with their defaults, and where those come from."
        )
        sub = parser.add_parser(self.name, description=description, help="List the tuning methods.")
        sub.set_defaults(func=_run)
        return sub


def _run(args: argparse.Namespace) -> None:
    from allennlp_lpt.experiments.methods import methods_table

    print(methods_table(), end="")
