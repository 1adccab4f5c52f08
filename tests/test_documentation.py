"""The repository stands alone: its documentation cites nothing outside it, and every document
it points a reader to exists."""
import os
import re
import subprocess

from config_swap import ROOT


def tracked_text_files():
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    for path in listed.stdout.splitlines():
        if path.endswith((".py", ".md", ".jsonnet", ".libsonnet", ".sh", ".txt")) or path == "Makefile":
            if os.path.isfile(os.path.join(ROOT, path)):
                yield path


def test_nothing_cites_the_specification_kept_outside_the_repository():
    # This file names the spec once, to look for it.
    citing = [path for path in tracked_text_files()
              if path != "tests/test_documentation.py"
              and "LPT_SPEC" in open(os.path.join(ROOT, path), encoding="utf-8").read()]
    assert not citing, citing


def test_every_document_the_repository_points_to_exists():
    pointer = re.compile(r"(?<![\w./-])((?:docs|training_configs)/[\w./-]+\.md)")
    missing = set()
    for path in tracked_text_files():
        for target in pointer.findall(open(os.path.join(ROOT, path), encoding="utf-8").read()):
            if not os.path.isfile(os.path.join(ROOT, target)):
                missing.add((path, target))
    assert not missing, sorted(missing)


def heading_anchors(path: str):
    """The anchors GitHub gives a Markdown file's headings (lower case, punctuation dropped,
    spaces to hyphens), outside code blocks."""
    anchors, in_code = set(), False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_relative_link_in_the_documents_reaches_its_file_and_heading():
    link = re.compile(r"\]\(([^)\s]+)\)")
    broken = []
    for path in tracked_text_files():
        if not path.endswith(".md"):
            continue
        for target in link.findall(open(os.path.join(ROOT, path), encoding="utf-8").read()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(ROOT, os.path.dirname(path), file_part)) if file_part \
                else os.path.join(ROOT, path)
            if not os.path.exists(resolved):
                broken.append((path, target, "no such file"))
            elif anchor and resolved.endswith(".md") and anchor not in heading_anchors(resolved):
                broken.append((path, target, "no such heading"))
    assert not broken, broken
