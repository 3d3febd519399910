# Two commands do all the set-up on a fresh machine (Python >= 3.11, Java 17 and Maven on PATH):
#   make demo   - virtualenv, dependencies, broker jars, Redis, default model; runs the whole pipeline
#   make test   - the same set-up, then the whole test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup demo test bench bench-convert clean-services

# the ICD-10-CM index (embeddings of the package's tabular list) is built once per package version and
# encoder into .cache/icd10cm/ (minutes on a laptop's CPU), and the NER model's int8 twin (what the worker runs on
# CPU) into .cache/int8/ (about a minute); later runs find them and return at once
# Debian's chromium (the dashboard's browser test) and redis-server (built with TLS, for the security test) when
# missing and apt-get runs as root; never fails set-up (without them those tests skip with the reason)
setup: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/clinstream index icd10cm
	HF_HUB_OFFLINE=1 $(BIN)/clinstream index ner-int8
	@sh scripts/install-test-packages.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/clinstream demo

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -ra

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python bench/pipeline_bench.py

bench-convert: setup
	$(BIN)/python bench/convert_bench.py

clean-services:
	$(BIN)/clinstream services down
