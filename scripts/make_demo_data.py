"""
Writes the small demo dataset the quickstart trains on: movie-review sentences composed from
phrases written for this project, in GLUE SST-2's TSV format (header `sentence<TAB>label`,
0 = negative, 1 = positive). Deterministic: running it again gives the same files.

    python scripts/make_demo_data.py demo_data/sst2_style
"""
import os
import random
import sys

SUBJECTS = [
    "the film", "this movie", "the story", "the script", "the acting", "the cast",
    "the director's latest work", "the soundtrack", "the ending", "the dialogue",
    "the second half", "the lead performance", "the camera work", "the plot",
]
POSITIVE = [
    "is a delight from start to finish", "is warm , funny and surprisingly moving",
    "kept me smiling the whole time", "is sharp , clever and beautifully made",
    "earns every one of its emotional moments", "feels fresh and full of life",
    "is a genuine pleasure to watch", "lands its jokes with real wit",
    "is gorgeous to look at and easy to love", "left the whole audience cheering",
    "is the best thing i have seen this year", "grows richer the more you think about it",
]
NEGATIVE = [
    "is a tedious mess", "drags on far too long and goes nowhere",
    "is flat , lifeless and forgettable", "wastes a talented cast on a lazy script",
    "never finds a reason to exist", "is loud , dull and painfully predictable",
    "made me check my watch every five minutes", "falls apart in the final act",
    "is clumsy and badly paced", "feels like a chore to sit through",
    "is the worst thing i have seen this year", "has nothing new to say",
]
POSITIVE_OPENERS = ["", "honestly , ", "in the end , ", "happily , ", "all in all , "]
NEGATIVE_OPENERS = ["", "honestly , ", "in the end , ", "sadly , ", "frankly , "]


def sentences(rng: random.Random):
    rows = []
    for subject in SUBJECTS:
        for phrase in POSITIVE:
            rows.append((f"{rng.choice(POSITIVE_OPENERS)}{subject} {phrase} .", 1))
        for phrase in NEGATIVE:
            rows.append((f"{rng.choice(NEGATIVE_OPENERS)}{subject} {phrase} .", 0))
    rng.shuffle(rows)
    return rows


def main(folder: str) -> None:
    rng = random.Random(13)
    rows = sentences(rng)
    os.makedirs(folder, exist_ok=True)
    split = int(len(rows) * 0.8)
    for name, part in (("train", rows[:split]), ("dev", rows[split:])):
        with open(os.path.join(folder, f"{name}.tsv"), "w", encoding="utf-8") as handle:
            handle.write("sentence\tlabel\n")
            for sentence, label in part:
                handle.write(f"{sentence}\t{label}\n")
        print(f"{folder}/{name}.tsv: {len(part)} sentences")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo_data/sst2_style")
