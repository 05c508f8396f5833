# Two commands do everything on a fresh machine:
#   make demo   - create .venv, install, run the main job on the shipped defaults
#   make test   - create .venv, install, run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls several GB of CUDA packages
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m eval.demo

test: $(STAMP)
	SDL_VIDEODRIVER=dummy $(PY) -m pytest tests

clean:
	rm -rf $(VENV) outputs runs
