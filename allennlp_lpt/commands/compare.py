import argparse
import json

from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError


@Subcommand.register("lpt-compare")
class Compare(Subcommand):
    """`allennlp lpt-compare BASE_CONFIG --methods ... --seeds ... -s OUT`: late prompt beside
    the other tuning methods, with the method as the only difference."""

    # AllenNLP then gives the subcommand --include-package (repeatable) and imports the plugins.
    requires_plugins = True

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Trains BASE_CONFIG (a late-prompt training config) once per method and seed with the "
            "method swapped in: the data, reader, head, trainer and seeds stay; each method brings "
            "its own learning rate and options (documented defaults, changed with "
            "--method-options). Each run is a real `allennlp train` into OUT/METHOD_seed=N; a run "
            "finished with the same config is reused: finished means its model.tar.gz is verified "
            "and marked (RUN/finished.json); anything else is trained again. Runs keep slim "
            "archives and no per-epoch checkpoints unless --keep-all. A second command on one OUT "
            "is refused, naming the first. Writes OUT/comparison.csv, comparison.md (in percent; "
            "macro-F1 beside accuracy for more than two labels; inference sentences/s and archive "
            "size), comparison.png (accuracy against training time) and runs.csv."
        )
        sub = parser.add_parser(self.name, description=description, help="Compare tuning methods.")
        sub.add_argument("config", help="the base training config (late prompt)")
        sub.add_argument("-s", "--serialization-dir", required=True, dest="output")
        sub.add_argument("--methods", default="all",
                         help="comma-separated method names (`allennlp lpt-methods` lists them), or "
                              "all (the default)")
        sub.add_argument("--seeds", type=int, nargs="+", default=[],
                         help="training seeds: each sets random_seed, numpy_seed and pytorch_seed")
        sub.add_argument("-o", "--overrides", default="", help="overrides of the base config, for every method (JSON)")
        sub.add_argument("--method-options", default="",
                         help='JSON: {"lora": {"lr": 1e-4, "r": 16}, ...}: a method\'s learning rate '
                              "and its own options, over its defaults")
        sub.add_argument("--time-budget", type=float, default=None,
                         help="seconds of training for every run (stopped there, best checkpoint kept); "
                              "raise trainer.num_epochs with -o so that every method can fill it")
        sub.add_argument("--configs-only", action="store_true",
                         help="write OUT/configs/METHOD.json (each a config for `allennlp train`) "
                              "and stop, training nothing")
        sub.add_argument("--rerun-changed", action="store_true",
                         help="train again the finished runs whose saved config differs from this one's")
        sub.add_argument("--keep-all", action="store_true",
                         help="keep what allennlp train keeps by default: the frozen backbone in each "
                              "archive and the last two epochs' checkpoints (by default only the trained "
                              "weights and the best epoch's)")
        search = sub.add_argument_group(
            "search", "With --trials N, each method is first searched by Optuna (N trials, the first seed, "
                      "scored on the validation set, hopeless trials pruned), then its best values are "
                      "trained with every seed. Writes OUT/search.csv and OUT/search.png.")
        search.add_argument("--trials", type=int, default=0,
                            help="trials per method (0, the default: no search, each method's defaults)")
        search.add_argument("--search-space", default="",
                            help='JSON: {"KEY": {"low": L, "high": H, "log": true}, "KEY": {"choices": [...]}, '
                                 '"lora": {"r": {"choices": [4, 8, 16]}}}; KEY is lr, a method option or a dotted '
                                 "config key (*.name: every name). Added to the default: lr, log-uniform over "
                                 "each method's range (`allennlp lpt-methods`)")
        search.add_argument("--storage", default=None,
                            help="the studies' database URL (default sqlite:///OUT/study.db); several "
                                 "processes given the same URL share the trials (e.g. postgresql://...)")
        search.add_argument("--study-name", default=None,
                            help="the studies' name, NAME/METHOD for each method (default: OUT's folder name)")
        search.add_argument("--pruner", default="",
                            help='JSON: an Optuna pruner and its arguments (default {"type": "MedianPruner"})')
        sub.set_defaults(func=_run)
        return sub


def _json(text: str, flag: str) -> dict:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{flag} is not valid JSON ({error}): {text!r}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{flag} must be a JSON object")
    return value


def _run(args: argparse.Namespace) -> None:
    # The comparison is imported when the command runs, not whenever the plugin loads.
    from allennlp_lpt.experiments.compare import compare, method_configs
    from allennlp_lpt.experiments.runs import InUse
    from allennlp_lpt.modules.tuning_methods import method_names

    packages = ["allennlp_lpt"] + [p for p in args.include_package if p != "allennlp_lpt"]
    methods = method_names() if args.methods.strip() == "all" else \
        [m.strip() for m in args.methods.split(",") if m.strip()]
    search_flags = [flag for flag, value in (("--search-space", args.search_space), ("--storage", args.storage),
                                             ("--study-name", args.study_name), ("--pruner", args.pruner))
                    if value]
    if search_flags and args.trials == 0:
        raise ConfigurationError(f"{', '.join(search_flags)} given without --trials N: give the number of "
                                 f"trials per method, or drop them.")
    if args.trials != 0 and args.configs_only:
        raise ConfigurationError("--configs-only trains nothing, so it takes no --trials; drop one of them.")
    if args.configs_only:
        paths = method_configs(args.config, methods, args.output, _json(args.overrides, "-o"),
                               _json(args.method_options, "--method-options"), args.time_budget)
        print("\n".join(paths.values()))
        return
    common = dict(
        methods=methods, seeds=args.seeds, overrides=_json(args.overrides, "-o"),
        method_options=_json(args.method_options, "--method-options"), time_budget=args.time_budget,
        include_packages=packages, rerun_changed=args.rerun_changed, keep_all=args.keep_all,
    )
    try:
        if args.trials != 0:
            # Optuna is imported here, when a search runs, not whenever the plugin loads.
            from allennlp_lpt.experiments.search import search_and_compare

            outcome = search_and_compare(
                args.config, args.output, trials=args.trials,
                search_space=_json(args.search_space, "--search-space"), storage=args.storage,
                study_name=args.study_name, pruner=_json(args.pruner, "--pruner") or None, **common,
            )
        else:
            outcome = compare(args.config, args.output, **common)
    except InUse as error:
        raise SystemExit(str(error)) from None
    if outcome.failed:
        raise SystemExit(1)
