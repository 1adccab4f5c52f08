"""What setup.py promises about Python: only versions whose tarfile extracts archives with
`filter=` (what loading an archive uses), with a clear message for older ones."""
import ast
import os
import runpy
import sys
import tarfile

import pytest
from packaging.specifiers import SpecifierSet

from config_swap import ROOT

SETUP = os.path.join(ROOT, "setup.py")


def python_requires() -> SpecifierSet:
    tree = ast.parse(open(SETUP, encoding="utf-8").read())
    values = {node.targets[0].id: node.value for node in ast.walk(tree)
              if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    call = next(node for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup")
    value = next(k.value for k in call.keywords if k.arg == "python_requires")
    if isinstance(value, ast.Name):
        value = values[value.id]
    return SpecifierSet(ast.literal_eval(value))


def test_python_requires_excludes_every_python_without_tarfiles_filter():
    allowed = python_requires()
    # tarfile's extraction filters arrived in 3.10.12 and 3.11.4; 3.11 is the version set up.
    for version in ("3.9.18", "3.10.0", "3.10.11", "3.11.0", "3.11.3"):
        assert version not in allowed, version
    assert "3.11.4" in allowed and "3.12.0" in allowed
    running = ".".join(map(str, sys.version_info[:3]))
    assert running in allowed
    assert "filter" in tarfile.TarFile.extractall.__code__.co_varnames


def test_an_older_python_is_told_which_version_and_why(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 10, 6, "final", 0))
    monkeypatch.setattr("platform.python_version", lambda: "3.10.6")
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(SETUP, run_name="__main__")
    message = str(stopped.value.code)
    assert "Python 3.11.4 or later" in message and "3.10.6" in message and "filter=" in message
