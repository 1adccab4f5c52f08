"""The life of a run under `lpt-compare` and `lpt-sweep`, through the real commands on a tiny
model: a killed command leaves no `allennlp train` behind and its half-written run is trained
again, a second command on one OUT refuses and names the first, seeds given twice are refused
before anything trains."""
import os
import signal
import subprocess
import sys
import time

import pytest

from allennlp_lpt.experiments.compare import compare
from config_swap import CONFIGS, ROOT, tiny_config


@pytest.fixture
def base(tiny_models, tmp_path):
    return tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="roberta",
                       epochs=1)


def command(*args: str) -> list:
    return [sys.executable, "-m", "allennlp", *args]


def children(pid: int) -> list:
    """The pids whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie that no one reaped has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def start_long_comparison(base: str, out: str) -> subprocess.Popen:
    """`lpt-compare` of one run that trains for far longer than the test waits."""
    return subprocess.Popen(
        command("lpt-compare", base, "-s", out, "--methods", "late_prompt", "--seeds", "1",
                "-o", '{"trainer.num_epochs": 100000}'),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_second_command_is_refused_and_a_killed_command_leaves_no_child(base, tmp_path, capsys):
    out = str(tmp_path / "out")
    first = start_long_comparison(base, out)
    try:
        [train] = wait_for(lambda: children(first.pid), 300, "lpt-compare to start allennlp train")
        # Started while the first trains: refused, naming the first, and nothing of the first's
        # is touched (its log is still the one being written).
        log = os.path.join(out, "logs", "late_prompt_seed=1.log")
        wait_for(lambda: os.path.isfile(log), 60, "the run's log")
        second = subprocess.run(
            command("lpt-compare", base, "-s", out, "--methods", "late_prompt", "--seeds", "1"),
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
        assert second.returncode == 1, second.stderr[-2000:]
        assert f"lpt-compare: {out} is in use by pid {first.pid} (" in second.stderr
        assert "lpt-compare" in second.stderr.split(f"pid {first.pid} (", 1)[1] and ", since 20" in second.stderr
        assert alive(train) and first.poll() is None
        # SIGTERM: the command ends its child before it exits.
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 128 + signal.SIGTERM
        assert not alive(train)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    # SIGKILL, which no handler sees: the kernel ends the child (PR_SET_PDEATHSIG).
    again = start_long_comparison(base, out)
    try:
        [train] = wait_for(lambda: children(again.pid), 300, "lpt-compare to start allennlp train")
        # Half-written: an epoch done, its metrics written.
        wait_for(lambda: os.path.isfile(os.path.join(out, "late_prompt_seed=1", "metrics_epoch_0.json")), 300,
                 "the first epoch")
        again.kill()
        again.wait()
        wait_for(lambda: not alive(train), 30, "the orphaned allennlp train to end")
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()

    # The half-written run is not reused: trained again, from its start.
    outcome = compare(base, out, methods=["late_prompt"], seeds=[1])
    assert outcome.trained == ["late_prompt_seed=1"] and not outcome.reused and not outcome.failed
    assert "unfinished run late_prompt_seed=1 (no metrics.json (training did not end)): trained again" \
        in capsys.readouterr().out


def test_seeds_given_twice_are_refused_before_anything_trains(base, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(command("lpt-sweep", base, "-s", str(out), "--seeds", "1", "2", "1"),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "--seeds: 1 given more than once; give each once." in done.stderr
    assert not out.exists() or not [name for name in os.listdir(out) if "seed=" in name]
