"""The README's "From Python" snippets run as written (only the output folder moves to a
temporary one)."""
import os
import re
import subprocess
import sys

from config_swap import ROOT


def python_snippets(section: str):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    start = text.index(f"## {section}")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_the_from_python_snippets_train_read_the_metrics_and_predict(tmp_path):
    snippets = python_snippets("From Python")
    assert len(snippets) == 3
    script = "\n".join(snippets).replace("runs/from-python", str(tmp_path / "from-python"))
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    # The snippets' own prints (AllenNLP's training log may share standard output).
    printed = [line for line in done.stdout.splitlines() if " - INFO - " not in line and line.strip()]
    assert printed[-2].startswith("dev accuracy "), printed[-5:]
    label, probabilities = printed[-1].split(" ", 1)
    assert label in ("0", "1") and "'0'" in probabilities and "'1'" in probabilities
    assert os.path.isfile(tmp_path / "from-python" / "model.tar.gz")
