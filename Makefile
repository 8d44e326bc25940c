# sandfill — `make demo` runs the devcluster + hub; `make test` runs the tests.
# Both do all their set-up on a fresh Debian 12 machine as root.

SHELL := /bin/bash
# The venv: the users' jobs run it, so they must reach it. In a checkout every user can reach
# (each parent directory searchable by others) it is `.venv`, an editable install. In one they
# cannot (a home directory is mode 0700) it goes to $(OUTSIDE_VENVS)/<checkout hash>, installed
# from the checkout (re-installed when a source file changes), and `.venv` links to it.
OUTSIDE_VENVS ?= /var/lib/sandfill/venvs
REACHABLE := $(shell d='$(CURDIR)'; while [ "$$d" != / ]; do \
  [ "$$(( 0$$(stat -c %a "$$d") & 1 ))" = 1 ] || { echo no; exit; }; d=$$(dirname "$$d"); done; echo yes)
ifeq ($(REACHABLE),yes)
VENV := .venv
INSTALL := -e .[test]
SOURCES :=
else
VENV := $(OUTSIDE_VENVS)/$(notdir $(CURDIR))-$(shell printf %s '$(CURDIR)' | sha1sum | cut -c1-12)
INSTALL := .[test]
SOURCES := $(shell git ls-files sandfill hub_config extensions/dask extensions/lab policies 2>/dev/null)
endif
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
APT_PACKAGES := slurm-wlm slurmdbd munge mariadb-server mariadb-client sudo chromium python3-venv python3-dev
LABEXT_SRC := extensions/labextension
LABEXT_OUT := extensions/lab/labextension
LABEXT_DEST := $(VENV)/share/jupyter/labextensions/sandfill-labextension
SERVER_CONF := $(VENV)/etc/jupyter/jupyter_server_config.d/sandfill-lab.json
STAMP_PY := $(VENV)/.sandfill-installed
STAMP_JS := $(LABEXT_OUT)/package.json
PYTEST_ARGS ?=

.PHONY: venv-path help setup system-packages venv labextension demo demo-clean test test-fast screenshots lint bench clean

help:
	@echo "make demo        boot the devcluster and the hub (prints URL and demo logins)"
	@echo "make test        set up everything and run the test suite"
	@echo "make demo-clean  remove the demo accounts and stop the demo"
	@echo "make bench       run the benchmarks in tests/bench"
	@echo "make screenshots regenerate the README's pictures (docs/panel.png) in a real browser"
	@echo "make lint        ruff"

setup: system-packages venv labextension

# Debian packages: installed only when something is missing. Not root? Say what to do.
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "sandfill: missing Debian packages:$$missing"; \
	    echo "  run as root: apt-get update && apt-get install -y$$missing   (or: sudo make setup)"; \
	    exit 1; \
	  fi; \
	  echo ">> apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The venv is built from the system python so that users' jobs can read it.
venv: $(STAMP_PY)
$(STAMP_PY): pyproject.toml $(SOURCES)
	@test -x /usr/bin/python3 || { echo "sandfill: /usr/bin/python3 is missing (apt-get install python3)"; exit 1; }
	@if [ "$(REACHABLE)" != yes ]; then \
	  echo "sandfill: other users cannot reach $(CURDIR) (a parent directory is not searchable), so"; \
	  echo "  the jobs' venv goes to $(VENV) (set OUTSIDE_VENVS= to choose another place)"; \
	  mkdir -p $(VENV) 2>/dev/null && chmod 755 $(OUTSIDE_VENVS) $(dir $(OUTSIDE_VENVS)) || { \
	    echo "sandfill: cannot create $(VENV): run as root, set OUTSIDE_VENVS to a directory"; \
	    echo "  every user can reach, or clone where other users can reach (e.g. under /srv)"; exit 1; }; \
	  ln -sfn $(VENV) .venv; \
	fi
	@test -x $(PY) || /usr/bin/python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q '$(INSTALL)'
	$(PY) -m ipykernel install --sys-prefix >/dev/null
	@command -v npm >/dev/null || { echo "sandfill: npm is missing (apt-get install nodejs npm)"; exit 1; }
	npm install -g --prefix $(VENV) --no-audit --no-fund --loglevel=error configurable-http-proxy@5
	@chmod -R a+rX $(VENV)
	@touch $@

# The JupyterLab front end: built once with npm, shipped prebuilt; the venv gets a copy.
labextension: $(STAMP_JS)
	@mkdir -p $(dir $(LABEXT_DEST))
	@rm -rf $(LABEXT_DEST) && cp -r $(LABEXT_OUT) $(LABEXT_DEST) && chmod -R a+rX $(LABEXT_DEST)
	@mkdir -p $(dir $(SERVER_CONF)) && cp extensions/lab/sandfill-lab.json $(SERVER_CONF) && chmod a+r $(SERVER_CONF)
$(STAMP_JS): $(STAMP_PY) $(LABEXT_SRC)/package.json $(LABEXT_SRC)/package-lock.json $(wildcard $(LABEXT_SRC)/src/*) $(wildcard $(LABEXT_SRC)/style/*)
	@command -v npm >/dev/null || { echo "sandfill: npm is missing (apt-get install nodejs npm)"; exit 1; }
	cd $(LABEXT_SRC) && npm ci --no-audit --no-fund --loglevel=error && PATH=$(abspath $(VENV))/bin:$$PATH npm run build

demo: setup
	$(VENV)/bin/sandfill demo

demo-clean: venv
	$(VENV)/bin/sandfill demo --clean

# pytest's own script, not `python -m pytest`, and PYTHONSAFEPATH for every Python the tests
# start (`python -c`, `-m`): none puts the checkout first on sys.path, where its `sandfill`
# folder would shadow the package an outside venv has installed.
export PYTHONSAFEPATH := 1
test: setup
	cd $(LABEXT_SRC) && npm test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -ra $(PYTEST_ARGS)

test-fast: venv
	$(VENV)/bin/pytest -ra -m "not slurm and not browser" $(PYTEST_ARGS)

# The README's pictures: the panel's browser test saves its screenshot into docs/ (tests
# write screenshots only to their temporary directories otherwise).
screenshots: setup
	SANDFILL_SCREENSHOT_DIR=$(CURDIR)/docs $(VENV)/bin/pytest -ra tests/lab/test_labextension.py -k panel $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

bench: setup
	@for b in tests/bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

venv-path:
	@echo $(abspath $(VENV))

clean:
	rm -rf $(VENV) $(LABEXT_OUT) $(LABEXT_SRC)/node_modules $(LABEXT_SRC)/lib build *.egg-info
