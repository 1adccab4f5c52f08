"""
Throughput and peak memory of `MultiTaskPredictor` (`allennlp lpt-predict-multi`) with T tasks
over all-MiniLM-L6-v2 (installed offline; 6 layers, prompt layer 3), against each task's own
`lpt_classifier` predictor run one after the other in the same process, on the same inputs.

    python scripts/multi_task_throughput.py --input data/sst2/dev.tsv [--tasks 1,2,4,8]

The T archives are the quickstart's model (basic_classifier, MPPG generator, mean pooling)
with T different random generators and heads, written here with `archive_model`: the work per
input is what a trained archive does. Inputs: the first `--sentences` sentences of a GLUE-style
TSV file (header `sentence<TAB>label`). Prints a markdown table: examples per second of both,
their ratio, the arithmetic limit `L*T / (k + T*(L - k))` and the share of it reached, and the
peak resident memory of a process that loads all T archives and predicts against T times that
of a process that loads one archive and predicts (each measured in a fresh process).
"""
import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from typing import List

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LAYERS, PROMPT_LAYER = 6, 3


def write_archives(root: str, count: int) -> List[str]:
    import torch
    from allennlp.common import Params
    from allennlp.data import Vocabulary
    from allennlp.models import Model
    from allennlp.models.archival import archive_model

    import allennlp_lpt  # noqa: F401

    shared = {"model_name": MODEL, "prompt_layer": PROMPT_LAYER}
    config = {
        "dataset_reader": {"type": "lpt_tsv", "model_name": MODEL, "max_length": 128, "labels": ["0", "1"]},
        "model": {
            "type": "basic_classifier", "namespace": "tags",
            "text_field_embedder": {"token_embedders": {"tokens": {"type": "late_prompt_transformer", **shared}}},
            "seq2vec_encoder": {"type": "late_prompt_roberta", **shared, "pooling": "mean",
                                "prompt_length": 5, "generator": {"type": "mppg"}},
        },
        "train_data_path": "unused", "trainer": {"num_epochs": 1},
    }
    archives = []
    for task in range(count):
        folder = os.path.join(root, f"task{task}")
        os.makedirs(folder)
        vocab = Vocabulary()
        vocab.add_tokens_to_namespace(["0", "1"], namespace="labels")
        torch.manual_seed(task)
        model = Model.from_params(vocab=vocab, params=Params(json.loads(json.dumps(config["model"]))))
        vocab.save_to_files(os.path.join(folder, "vocabulary"))
        torch.save(model.state_dict(), os.path.join(folder, "weights.th"))
        with open(os.path.join(folder, "config.json"), "w") as handle:
            json.dump(config, handle)
        archive_model(folder, weights="weights.th")
        archives.append(os.path.join(folder, "model.tar.gz"))
    return archives


def read_sentences(path: str, count: int) -> List[dict]:
    with open(path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [{"sentence": row["sentence"]} for row in rows[:count]]


def _child(archives: List[str], inputs: List[dict], together: bool, queue) -> None:
    import logging

    logging.disable(logging.INFO)
    import allennlp_lpt  # noqa: F401
    from allennlp.models.archival import load_archive
    from allennlp.predictors import Predictor

    from allennlp_lpt.predictors import MultiTaskPredictor

    if together:
        MultiTaskPredictor.from_archives(archives, names=[str(i) for i in range(len(archives))]
                                         ).predict_batch_json(inputs)
    else:
        Predictor.from_archive(load_archive(archives[0]), "lpt_classifier").predict_batch_json(inputs)
    from allennlp_lpt.experiments.benchmark import peak_rss_mib

    queue.put(peak_rss_mib())


def peak_in_child(archives: List[str], inputs: List[dict], together: bool) -> float:
    from allennlp_lpt.experiments.benchmark import in_fresh_process

    return float(in_fresh_process(_child, archives, inputs, together))  # type: ignore[arg-type]


def timed(predict, batches, repeats: int) -> float:
    """Examples per second: the median of `repeats` passes over `batches`, after a warm-up."""
    predict(batches[0])
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            predict(batch)
        rates.append(sum(len(b) for b in batches) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="a GLUE-style TSV with a 'sentence' column")
    parser.add_argument("--tasks", default="1,2,4,8")
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import logging

    logging.disable(logging.INFO)
    import torch
    from allennlp.models.archival import load_archive
    from allennlp.predictors import Predictor

    import allennlp_lpt  # noqa: F401
    from allennlp_lpt.predictors import MultiTaskPredictor

    inputs = read_sentences(args.input, args.sentences)
    batches = [inputs[i:i + args.batch_size] for i in range(0, len(inputs), args.batch_size)]
    counts = [int(t) for t in args.tasks.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(inputs)} sentences "
          f"of {args.input}, batches of {args.batch_size}; {MODEL}, prompt layer {PROMPT_LAYER} of {LAYERS}",
          file=sys.stderr)
    print("| tasks | each predictor alone (examples/s) | lpt-predict-multi (examples/s) | speed-up | "
          "limit L*T/(k+T(L-k)) | share of the limit | peak MiB, T archives alone | peak MiB, together |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        archives = write_archives(root, max(counts))
        for count in counts:
            chosen = archives[:count]
            multi = MultiTaskPredictor.from_archives(chosen, names=[str(i) for i in range(count)])
            alone = [Predictor.from_archive(load_archive(a), "lpt_classifier") for a in chosen]
            # Same outputs (to 1e-6) before anything is timed.
            for batch in batches[:2]:
                together = multi.predict_batch_json(batch)
                for index, predictor in enumerate(alone):
                    for ours, theirs in zip(together, predictor.predict_batch_json(batch)):
                        assert max(abs(a - b) for a, b in zip(ours[str(index)]["logits"], theirs["logits"])) <= 1e-6

            def each_alone(batch):
                for predictor in alone:
                    predictor.predict_batch_json(batch)

            slow = timed(each_alone, batches, args.repeats)
            fast = timed(multi.predict_batch_json, batches, args.repeats)
            limit = LAYERS * count / (PROMPT_LAYER + count * (LAYERS - PROMPT_LAYER))
            speedup = fast / slow
            one = peak_in_child(chosen, batches[0], together=False)
            shared = peak_in_child(chosen, batches[0], together=True)
            print(f"| {count} | {slow:.1f} | {fast:.1f} | {speedup:.2f}x | {limit:.2f}x | "
                  f"{100 * speedup / limit:.0f}% | {count * one:.0f} ({count} x {one:.0f}) | {shared:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
