# The two commands a newcomer needs (see README.md):
#   make demo   set everything up, then run the main job on the embedded software switch
#   make test   set everything up, then run every test tier this machine can run
PY      ?= python3
VENV    ?= .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.p4ctl-setup

.PHONY: setup demo test unit lint bench pipelines clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	bash scripts/system-deps.sh $(PY)
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[test]'
	$(VPY) -m p4ctl.protogen
	touch $(STAMP)

demo: setup
	$(VENV)/bin/p4ctl demo

test: setup
	$(VPY) -m pytest tests

unit: setup
	$(VPY) -m pytest tests -m unit

lint: setup
	$(VENV)/bin/ruff check .

# The benchmarks, each printing its figures next to a same-run baseline
# (bench_flows.py --separate and --bmv2 need root, and BMv2 for the latter).
bench: setup
	$(VPY) benchmarks/bench_store.py
	$(VPY) benchmarks/bench_switch.py
	$(VPY) benchmarks/bench_writes.py
	$(VPY) benchmarks/bench_flows.py

# Regenerate pipelines/ from p4src/ (needs p4c on PATH).
pipelines: setup
	$(VPY) -m p4ctl.compile

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
