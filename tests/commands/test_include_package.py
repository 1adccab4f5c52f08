"""Every `lpt-*` subcommand accepts `--include-package` (repeatable) like AllenNLP's own, and is
found from any directory through AllenNLP's global plugins file."""
import os
import subprocess
import sys
from unittest import mock

import pytest
from allennlp.commands import parse_args

from config_swap import FIXTURES

MINIMAL_ARGS = {
    "lpt-aggregate": ["runs"],
    "lpt-benchmark": [],
    "lpt-few-shot": ["--input", "x.tsv", "--format", "glue-tsv", "--task", "sst-2", "--k", "16",
                     "--output", "out"],
    "lpt-slim-archive": ["model.tar.gz", "slim.tar.gz"],
    "lpt-sweep": ["config.jsonnet", "--grid", "{}", "-s", "out"],
}


@pytest.mark.parametrize("command", sorted(MINIMAL_ARGS))
def test_every_subcommand_accepts_include_package_repeatedly(command):
    argv = ["allennlp", command, *MINIMAL_ARGS[command],
            "--include-package", "allennlp_lpt", "--include-package", "json"]
    with mock.patch.object(sys, "argv", argv):
        _, args = parse_args()
    assert args.include_package == ["allennlp_lpt", "json"]


def test_the_global_plugins_file_finds_the_subcommands_from_any_directory(tmp_path):
    """No .allennlp_plugins in the working directory: AllenNLP's global plugins file
    (~/.allennlp/plugins, which `make register-plugin` writes) is enough."""
    home = tmp_path / "home"
    (home / ".allennlp").mkdir(parents=True)
    (home / ".allennlp" / "plugins").write_text("allennlp_lpt\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "allennlp", "lpt-aggregate", os.path.join(FIXTURES, "no-runs-here"),
         "--include-package", "allennlp_lpt"],
        cwd=elsewhere, env=dict(os.environ, HOME=str(home)), capture_output=True, text=True, timeout=300,
    )
    assert "invalid choice" not in run.stderr and "unrecognized arguments" not in run.stderr, run.stderr[-2000:]
    # The subcommand ran: its own answer to a folder without runs.
    assert "no serialization directory" in run.stderr, run.stderr[-2000:]


def test_importing_the_plugin_leaves_the_experiment_tooling_unimported():
    """`import allennlp_lpt` runs before every `allennlp` command: it registers the components
    and the subcommands, but the benchmark, sweep and aggregation load only when their command
    runs (and matplotlib, Optuna and multiprocessing with them). PEFT is not asked about:
    transformers 5's own `transformers.optimization`, which AllenNLP's schedulers import, imports
    it (through `trainer_utils`) wherever it is installed."""
    code = (
        "import sys, allennlp_lpt\n"
        "from allennlp.commands import parse_args\n"
        "sys.argv = ['allennlp', 'lpt-sweep', 'c.jsonnet', '-s', 'out']\n"
        "parse_args()\n"  # every subcommand's parser, as AllenNLP builds them
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('allennlp_lpt', 'matplotlib', 'peft', 'optuna')))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = loaded.stdout.split()
    assert "allennlp_lpt.commands.sweep" in modules and "allennlp_lpt.models" in modules
    assert "allennlp_lpt.training.optuna_pruning" in modules  # registered, Optuna not imported
    assert not [m for m in modules if m.startswith(("allennlp_lpt.experiments", "matplotlib", "optuna"))]
