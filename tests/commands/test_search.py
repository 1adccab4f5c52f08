"""`allennlp lpt-compare --trials N` on a tiny model: pruned trials stop early, two processes on
one SQLite study run every trial once and retrain the best trial's values with every seed, and
bad search flags are errors naming the flag before anything trains."""
import csv
import json
import os
import subprocess
import sys

import pytest
from allennlp.common.checks import ConfigurationError

from allennlp_lpt.experiments.search import search_and_compare
from config_swap import CONFIGS, ROOT, tiny_config


def rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def base_config(tiny_models, folder, epochs):
    return tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(folder), family="roberta",
                       epochs=epochs)


def test_a_pruned_trial_stops_after_the_epoch_the_pruner_refuses(tiny_models, tmp_path):
    base = base_config(tiny_models, tmp_path, epochs=3)
    out = tmp_path / "out"
    # Accuracy is never above 1.1: Optuna's ThresholdPruner prunes every trial at its first report.
    validation = json.load(open(base))["validation_data_path"]
    outcome = search_and_compare(base, str(out), methods=["late_prompt"], trials=2, seeds=[1],
                                 pruner={"type": "ThresholdPruner", "lower": 1.1},
                                 overrides={"test_data_path": validation, "evaluate_on_test": True})
    search = rows(out / "search.csv")
    assert [(r["trial"], r["state"], r["epochs_reported"]) for r in search] == [("0", "PRUNED", "1"), ("1", "PRUNED", "1")]
    for row in search:
        metrics = json.load(open(os.path.join(row["run"], "metrics.json")))
        # Stopped after the first of 3 epochs, then archived and scored as any run.
        assert metrics["epoch"] == 0 and metrics["pruned_at_epoch"] == 0
        assert float(row["dev_accuracy"]) == metrics["best_validation_accuracy"]
        assert os.path.isfile(os.path.join(row["run"], "model.tar.gz"))
        # A trial is scored on the validation set only, whatever the base config says of test.
        assert not [key for key in metrics if key.startswith("test_")]
    # No trial completed: nothing to retrain, and the command says so (exit 1).
    assert outcome.failed == [("late_prompt (search)", str(out / "search.csv"))]
    assert not (out / "late_prompt_seed=1").exists()


def test_two_processes_share_one_study_and_retrain_its_best_trial(tiny_models, tmp_path):
    base = base_config(tiny_models, tmp_path, epochs=1)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    outs = [tmp_path / "machine_a", tmp_path / "machine_b"]
    command = [sys.executable, "-m", "allennlp", "lpt-compare", base, "--methods", "late_prompt", "--seeds", "1", "2",
               "--trials", "3", "--storage", storage, "--study-name", "shared",
               "--search-space", json.dumps({"*.prompt_length": {"choices": [2, 3]}})]
    processes = [subprocess.Popen(command + ["-s", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for out in outs]
    for process in processes:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-3000:]

    import optuna

    study = optuna.load_study(study_name="shared/late_prompt", storage=storage)
    run_here = [t for t in study.trials if not t.user_attrs.get("surplus")]
    assert sorted(t.number for t in run_here) == [0, 1, 2]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in run_here)
    # Each trial was trained once, by one of the two processes, into its own OUT.
    trained = [(out, name) for out in outs for name in os.listdir(out / "search" / "late_prompt")
               if name.startswith("trial=")]
    assert sorted(name for _, name in trained) == ["trial=0", "trial=1", "trial=2"]

    for out in outs:
        search = rows(out / "search.csv")
        assert [r["trial"] for r in search] == ["0", "1", "2"] and all(r["seconds"] for r in search)
        # The best trial: highest dev accuracy, the earliest among equals.
        best = max(search, key=lambda r: (float(r["dev_accuracy"]), -int(r["trial"])))
        for seed in (1, 2):
            final = json.load(open(out / f"late_prompt_seed={seed}" / "config.json"))
            assert final["trainer"]["optimizer"]["lr"] == float(best["lr"])
            assert final["model"]["seq2vec_encoder"]["prompt_length"] == int(best["*.prompt_length"])
            assert final["random_seed"] == seed
            assert not [c for c in final["trainer"]["callbacks"] if c["type"] == "lpt_optuna_pruning"]
        assert rows(out / "comparison.csv")[0]["seeds"] == "2"
        assert os.path.getsize(out / "search.png") > 0


@pytest.mark.parametrize("flags, message", [
    ({"search_space": {"lora": {"rank": {"low": 2, "high": 8}}}},
     r"--search-space 'rank' \(lora\): the method's config has no key 'rank'; a method takes lr, its options "
     r"\(alpha, dropout, r, target_modules\)"),
    ({"search_space": {"*.prompt_length": {"choices": [2]}}},
     r"--search-space '\*.prompt_length' \(lora\): the method's config has no key 'prompt_length' anywhere"),
    ({"search_space": {"lr": {"low": 1e-3, "high": 1e-4, "log": True}}},
     r"--search-space 'lr' \(late_prompt\): the range 0.001 .. 0.0001 is empty"),
    ({"search_space": {"lr": {"low": 0, "high": 1e-3, "log": True}}}, r"a log range needs low above 0"),
    ({"search_space": {"lr": [1e-4, 1e-3]}}, r"is not a range; give \{\"low\""),
    ({"trials": -1}, r"--trials -1: give the number of trials per method, 1 or more"),
    ({"storage": "sqlite:////no/such/folder/study.db"}, r"--storage 'sqlite:////no/such/folder/study.db': Optuna cannot open"),
    ({"storage": "postgresql://nobody@127.0.0.1:9/none"}, r"--storage 'postgresql://nobody@127.0.0.1:9/none': Optuna cannot open"),
    ({"pruner": {"type": "MeanPruner"}}, r"--pruner: type 'MeanPruner' is not an Optuna pruner; choose from .*MedianPruner"),
])
def test_bad_search_flags_are_errors_before_any_training(tiny_models, tmp_path, flags, message):
    base = base_config(tiny_models, tmp_path, epochs=1)
    out = tmp_path / "out"
    flags = {"trials": 2, **flags}
    with pytest.raises(ConfigurationError, match=message):
        search_and_compare(base, str(out), methods=["late_prompt", "lora"], seeds=[1], **flags)
    assert not (out / "search").exists() and not (out / "late_prompt_seed=1").exists()


def test_search_flags_without_trials_are_refused_by_the_command(tiny_models, tmp_path):
    base = base_config(tiny_models, tmp_path, epochs=1)
    result = subprocess.run(
        [sys.executable, "-m", "allennlp", "lpt-compare", base, "-s", str(tmp_path / "out"), "--methods", "lora",
         "--storage", "sqlite:///x.db"], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "--storage given without --trials N" in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "out").exists()


def test_processes_that_open_a_new_study_database_together_all_open_it(tmp_path):
    """Each creates the tables of a new SQLite file; those that lose the race open what the
    winner made (machines started together on one --storage)."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code = ("import sys\nfrom allennlp_lpt.training.optuna_pruning import open_storage\n"
            "open_storage(sys.argv[1], key='--storage')\nprint('opened')")
    processes = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, cwd=ROOT) for _ in range(4)]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and out.strip() == "opened", err[-2000:]
