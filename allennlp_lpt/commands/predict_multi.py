import argparse
import json
import sys
from typing import List, Tuple

from allennlp.commands.subcommand import Subcommand
from allennlp.common.util import JsonDict


@Subcommand.register("lpt-predict-multi")
class PredictMulti(Subcommand):
    """`allennlp lpt-predict-multi`: several late-prompt archives of one backbone, one input file."""

    requires_plugins = True

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Predicts every line of INPUT_FILE with each archive, all sharing one backbone in "
            "memory and, for archives whose readers give the same token ids, one pass of the "
            "lower layers up to their smallest prompt layer. Each output line is a JSON object "
            "mapping each task's name to what `allennlp predict ARCHIVE --predictor "
            "lpt_classifier` writes for that line. Archives must share model_name and "
            "backbone_dtype."
        )
        sub = parser.add_parser(self.name, description=description,
                                help="Predict with several late-prompt archives of one backbone.")
        sub.add_argument("paths", nargs="+", metavar="ARCHIVE ... INPUT_FILE",
                         help="the archives (full or lightweight), then the JSON-lines input file")
        sub.add_argument("--output-file", default=None,
                         help="where to write the JSON lines (default: standard output, as "
                              "allennlp predict prints them)")
        sub.add_argument("--batch-size", type=int, default=1, help="inputs per batch (as allennlp predict)")
        sub.add_argument("--cuda-device", type=int, default=-1, help="GPU id; -1: the CPU")
        sub.add_argument("--names", nargs="+", default=None,
                         help="one name per archive (default: each archive's file name without "
                              "extension, or its folder's name where those collide)")
        sub.set_defaults(func=_run)
        return sub


def _run(args: argparse.Namespace) -> None:
    from allennlp_lpt.predictors.lpt_classifier import numbered_lines, parse_input_line
    from allennlp_lpt.predictors.multi_task import MultiTaskPredictor

    if len(args.paths) < 2:
        raise SystemExit("lpt-predict-multi: give at least one archive and the input file")
    if args.batch_size < 1:
        raise SystemExit("lpt-predict-multi: --batch-size must be at least 1")
    *archives, input_file = args.paths
    predictor = MultiTaskPredictor.from_archives(archives, names=args.names, cuda_device=args.cuda_device)
    print(predictor.describe_groups(), file=sys.stderr)
    # The whole file is checked before anything is predicted: a bad line leaves no output.
    checked: List[Tuple[str, JsonDict]] = []
    try:
        for number, line in numbered_lines(input_file):
            where = f"{input_file}:{number}"
            checked.append((where, parse_input_line(line, where=where)))
        predictor.check_inputs(checked)
    except ValueError as error:  # InputLineError included
        raise SystemExit(str(error)) from None
    inputs = [parsed for _, parsed in checked]
    # Standard output carries the predictions only; what the command says goes to stderr.
    handle = sys.stdout if args.output_file is None else open(args.output_file, "w")
    try:
        for start in range(0, len(inputs), args.batch_size):
            for output in predictor.predict_batch_json(inputs[start:start + args.batch_size]):
                handle.write(json.dumps(output) + "\n")
            handle.flush()
    finally:
        if handle is not sys.stdout:
            handle.close()
    where = "standard output" if args.output_file is None else args.output_file
    print(f"lpt-predict-multi: {len(inputs)} line(s), {len(archives)} task(s) -> {where}", file=sys.stderr)
