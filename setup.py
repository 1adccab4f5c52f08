import platform
import sys

from setuptools import find_packages, setup

# Archives are extracted with tarfile's `filter=` (allennlp_lpt/compat.py), which Python has from
# 3.11.4 (and 3.10.12); the pinned requirements are those of Python 3.11, the version the README
# sets up with.
PYTHON_REQUIRES = ">=3.11.4"
if sys.version_info < (3, 11, 4):
    sys.exit(
        f"allennlp-lpt needs Python 3.11.4 or later; this is Python {platform.python_version()}. "
        f"It extracts model archives with tarfile's filter= argument (added in 3.11.4) and pins "
        f"its requirements for Python 3.11. Create the environment with a newer Python, e.g. "
        f"rm -rf .venv && make install PYTHON=python3.11."
    )

setup(
    name="allennlp-lpt",
    version="0.1.0",
    description="Late Prompt Tuning (Findings of EMNLP 2022) as AllenNLP components",
    packages=find_packages(include=["allennlp_lpt", "allennlp_lpt.*"]),
    # AllenNLP's repairs for transformers 5 / huggingface_hub 1, loaded at interpreter start by
    # the .pth file `make install` writes (see allennlp_repair.py).
    py_modules=["allennlp_repair"],
    package_data={"allennlp_lpt": ["py.typed"]},
    python_requires=PYTHON_REQUIRES,
    # allennlp itself is installed with --no-deps (see Makefile): its metadata pins torch<1.13.
    install_requires=["torch>=2.6", "transformers==5.24.0", "accelerate==1.16.0", "peft==0.21.2"],
)
