"""
SST-2 dev accuracy and wall time with all-MiniLM-L6-v2, every method trained by `allennlp train`:
late prompt (the quickstart's MPPG at prompt layers 1, 3, 5; NPG at 3), late prompt with the
lower-layer cache, input-level prompt tuning (prompt_layer 0, static prompt), full fine-tuning,
frozen backbone + linear head.

    python scripts/accuracy_sst2.py --sst2 data/sst2 --out runs/accuracy-sst2 \
        [--train-examples N] [--epochs E] [--methods a,b,...]

`--train-examples` caps the training instances (dataset_reader.max_instances; the dev set is read
in full by a separate validation reader). Finished runs are reused. Prints and writes
OUT/results.md with each run's exact command.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

from allennlp_lpt.core import resolve_model_name

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LOWER = "model.text_field_embedder.token_embedders.tokens"
ENCODER = "model.seq2vec_encoder"
QUICKSTART = "training_configs/quickstart.jsonnet"


def full_config(out: str) -> str:
    """The quickstart with full fine-tuning swapped in, as `allennlp lpt-compare` swaps it."""
    import allennlp_lpt  # noqa: F401  (registers the methods)
    from allennlp_lpt.experiments.configs import load_config
    from allennlp_lpt.experiments.methods import with_method

    path = os.path.join(out, "full_finetune.json")
    os.makedirs(out, exist_ok=True)
    with open(path, "w") as handle:
        json.dump(with_method(load_config(QUICKSTART, {}), "full"), handle, indent=2)
    return path


def methods(out: str):
    local = resolve_model_name(MODEL)
    runs = {}
    for k in (1, 3, 5):
        runs[f"late_prompt_k{k}"] = (QUICKSTART, {f"{LOWER}.prompt_layer": k, f"{ENCODER}.prompt_layer": k})
    # The quickstart's generator is MPPG; NPG (the paper's naive generator) for comparison.
    runs["late_prompt_k3_npg"] = (QUICKSTART, {f"{ENCODER}.generator": {"type": "npg"}})
    runs["late_prompt_k3_cached"] = (QUICKSTART, {f"{LOWER}.cache": True})
    runs["prompt_tuning_k0"] = (QUICKSTART, {f"{LOWER}.prompt_layer": 0, f"{ENCODER}.prompt_layer": 0,
                                             f"{ENCODER}.generator": {"type": "static"}})
    runs["full_finetune"] = (full_config(out), {f"{LOWER}.model_name": local})
    runs["frozen_linear"] = ("training_configs/baselines/minilm_frozen_linear.jsonnet", {f"{LOWER}.model_name": local})
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sst2", default="data/sst2")
    parser.add_argument("--out", default="runs/accuracy-sst2")
    parser.add_argument("--train-examples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--methods", default=None, help="comma-separated subset")
    args = parser.parse_args()
    common = {"train_data_path": f"{args.sst2}/train.tsv", "validation_data_path": f"{args.sst2}/dev.tsv",
              "trainer.num_epochs": args.epochs}
    if args.train_examples:
        common["dataset_reader.max_instances"] = args.train_examples
        common["validation_dataset_reader"] = {"type": "lpt_tsv", "model_name": MODEL, "max_length": 128}
    chosen = methods(args.out)
    if args.methods:
        chosen = {name: chosen[name] for name in args.methods.split(",")}
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for name, (config, extra) in chosen.items():
        directory = os.path.join(args.out, name)
        overrides = json.dumps({**common, **extra})
        command = ["allennlp", "train", config, "-s", directory, "-f", "-o", overrides]
        start = time.time()
        if not os.path.isfile(os.path.join(directory, "metrics.json")):
            with open(directory + ".log", "w") as log:
                subprocess.run([sys.executable, "-m", "allennlp", *command[1:]], stdout=log, stderr=subprocess.STDOUT, check=True)
        wall = time.time() - start
        metrics = json.load(open(os.path.join(directory, "metrics.json")))
        epochs = []
        for epoch in range(args.epochs):
            path = os.path.join(directory, f"metrics_epoch_{epoch}.json")
            if os.path.isfile(path):
                epochs.append(json.load(open(path)).get("training_duration", ""))
        rows.append((name, 100 * metrics["best_validation_accuracy"], metrics["training_duration"], wall,
                     ", ".join(epochs), " ".join(shlex.quote(part) for part in command)))
        print(f"{name}: dev {rows[-1][1]:.2f}%  training {metrics['training_duration']}  wall {wall:.0f} s", flush=True)
    lines = ["| method | SST-2 dev acc | training time | time at each epoch's end | wall time (incl. start-up) |",
             "|---|---|---|---|---|"]
    lines += [f"| {n} | {a:.2f} | {t} | {e} | {w:.0f} s |" for n, a, t, w, e, _ in rows]
    lines += ["", "Commands:", ""] + [f"- {n}: `{c}`" for n, _, _, _, _, c in rows]
    with open(os.path.join(args.out, "results.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
