import argparse
import json

from allennlp.commands.subcommand import Subcommand



@Subcommand.register("lpt-sweep")
class Sweep(Subcommand):
    """`allennlp lpt-sweep CONFIG --grid GRID -s OUT`: config-driven ablations."""

    # AllenNLP then gives the subcommand --include-package (repeatable) and imports the plugins.
    requires_plugins = True

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Runs `allennlp train` for every combination of the grid's values, every few-shot "
            "data seed and every training seed, sequentially, each into its own directory under "
            "OUT; when the sweep starts again, a run that finished with the same config is reused "
            "(one that finished with another config stops the sweep, unless --rerun-changed); a "
            "failed run is reported with its log and the sweep goes on, ending with a summary and "
            "exit status 1. A run counts as finished once its model.tar.gz is verified (it opens and "
            "holds the config and the weights) and marked (RUN/finished.json); anything else is "
            "trained again. Runs keep slim archives (save_backbone: false) and no per-epoch "
            "checkpoints unless --keep-all. A second command on one OUT is refused, naming the "
            "first. Writes OUT/results.csv, OUT/results.md (mean ± std over the seeds of "
            "each combination, in percent) and OUT/plot.png. Grid keys are the dotted keys of -o overrides; "
            "`*.name` sets every `name` in the config (e.g. `*.prompt_layer` sets the embedder's "
            "and the encoder's together)."
        )
        sub = parser.add_parser(self.name, description=description, help="Run a grid of configs.")
        sub.add_argument("config", help="the training config")
        sub.add_argument("--grid", default="{}", help='JSON: {"dotted.key": [values], ...}; none: only the seeds vary')
        sub.add_argument("-s", "--serialization-dir", required=True, dest="output")
        sub.add_argument("--seeds", type=int, nargs="+", default=[],
                         help="training seeds: each sets random_seed, numpy_seed and pytorch_seed")
        sub.add_argument("--data-seeds", type=int, nargs="+", default=[],
                         help="few-shot data seeds: each moves the config's data paths to that "
                              "seed's split written by lpt-few-shot (data/k-shot/TASK/K-SEED/)")
        sub.add_argument("-o", "--overrides", default="", help="fixed overrides for every run (JSON)")
        sub.add_argument("--x", default=None, help="the swept key to plot against")
        sub.add_argument("--rerun-changed", action="store_true",
                         help="train again the finished runs whose saved config differs from this sweep's")
        sub.add_argument("--keep-all", action="store_true",
                         help="keep what allennlp train keeps by default: the frozen backbone in each "
                              "archive and the last two epochs' checkpoints (by default only the trained "
                              "weights and the best epoch's)")
        sub.set_defaults(func=_run)
        return sub


def _run(args: argparse.Namespace) -> None:
    # The sweep runner is imported when the command runs, not whenever the plugin loads.
    from allennlp_lpt.experiments.runs import InUse
    from allennlp_lpt.experiments.sweep import parse_grid, run_sweep

    fixed = json.loads(args.overrides) if args.overrides.strip() else {}
    # --include-package comes from AllenNLP (requires_plugins); the runs import the same.
    packages = ["allennlp_lpt"] + [p for p in args.include_package if p != "allennlp_lpt"]
    try:
        outcome = run_sweep(args.config, parse_grid(args.grid), args.output, seeds=args.seeds,
                            data_seeds=args.data_seeds,
                            fixed=fixed, include_packages=packages, x_key=args.x,
                            rerun_changed=args.rerun_changed, keep_all=args.keep_all)
    except InUse as error:
        raise SystemExit(str(error)) from None
    if outcome.failed:
        raise SystemExit(1)
