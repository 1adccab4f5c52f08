import argparse

from allennlp.commands.subcommand import Subcommand


@Subcommand.register("lpt-benchmark")
class Benchmark(Subcommand):
    """`allennlp lpt-benchmark`: training-step time and memory of LPT against its peers."""

    # AllenNLP then gives the subcommand --include-package (repeatable) and imports the plugins.
    requires_plugins = True

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Trains a sequence classifier on one random-weight backbone with each method, side "
            "by side in one process, and reports the median training-step time (after warm-up; "
            "synchronised on CUDA), the peak memory (CUDA: max allocated; CPU: peak RSS of a "
            "separate process per method) and the trainable parameters, with ratios to full "
            "fine-tuning. Methods: every tuning method (`allennlp lpt-methods`, with the "
            "defaults listed there) and late_prompt_cached (all by default)."
        )
        sub = parser.add_parser(self.name, description=description, help="Benchmark LPT against its peers.")
        sub.add_argument("--family", choices=["roberta", "bert", "gpt2"], default="roberta")
        sub.add_argument("--size", choices=["tiny", "base", "large"], default="base")
        sub.add_argument("--batch-size", type=int, default=16)
        sub.add_argument("--length", type=int, default=128)
        sub.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
        sub.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
        sub.add_argument("--methods", default="all", help="comma-separated, or all")
        sub.add_argument("--steps", type=int, default=10, help="timed steps per method")
        sub.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
        sub.add_argument("--prompt-layer", type=int, default=None, help="default: half the layers")
        sub.add_argument("--prompt-length", type=int, default=5)
        sub.add_argument("--model-name", default=None,
                         help="use this model's shape (random weights) instead of --family/--size")
        sub.add_argument("--peers", choices=["fair", "stock"], default="fair",
                         help="fair: the HF peers train with the same lean attention and dropout as "
                              "late prompt; stock: with HF's own modules (RoBERTa: eager attention)")
        sub.add_argument("--backbone-dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                         help="the dtype the frozen weights are stored in: late prompt's backbone and "
                              "the PEFT methods' frozen base alike (full fine-tuning stays float32)")
        sub.add_argument("--compile", action="store_true",
                         help="torch.compile every method (HF models whole, late prompt's stacks)")
        sub.add_argument("--profile", action="store_true",
                         help="also count, per step: operator calls or kernel launches, dtype "
                              "copies, host-to-device copies, synchronisations")
        sub.add_argument("--output", default=None, help="also write JSON lines here")
        sub.set_defaults(func=_run)
        return sub


def _run(args: argparse.Namespace) -> None:
    # The harness is imported when the command runs, not whenever the plugin loads.
    from allennlp_lpt.experiments.benchmark import Settings, run, table, write_json_lines

    methods = () if args.methods.strip() == "all" else tuple(
        m.strip() for m in args.methods.split(",") if m.strip()
    )
    settings = Settings(
        family=args.family, size=args.size, batch_size=args.batch_size, length=args.length,
        device=args.device, precision=args.precision,
        methods=methods,
        steps=args.steps, warmup=args.warmup, prompt_layer=args.prompt_layer,
        prompt_length=args.prompt_length, model_name=args.model_name, peers=args.peers,
        backbone_dtype=args.backbone_dtype, compile=args.compile, profile=args.profile,
    )
    rows = run(settings)
    print(table(rows), end="")
    if args.output:
        write_json_lines(rows, args.output)
    failed = [row["method"] for row in rows if str(row.get("error", "")).startswith("failed")]
    if failed:  # the table is printed and written first: the other methods' figures stand
        raise SystemExit(f"lpt-benchmark: {', '.join(failed)} failed (the tracebacks are above)")
