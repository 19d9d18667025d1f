# Pinhole: set-up, run, test and benchmark from the checkout.
#
#   make venv                  create .venv from requirements.lock (re-run when the lock changes)
#   make run                   create .venv if needed, migrate, serve
#   make run CONFIG=my.toml    the same with another config file
#   make test                  install the test tools too, run the suite on rung 0, then the functional tests on the
#                              top rung (Postgres x2, Redis, memcached, S3, nginx: tests/rungs.py)
#   make test PYTEST_ARGS='-k feed -x'   (both passes get PYTEST_ARGS; TOP_RUNG_TESTS= skips the second)
#   make bench                 run every scaling/bench/bench_*.py
#   make lock                  re-resolve requirements*.lock from pyproject.toml
#   make clean                 remove .venv and caches (never storage/)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CONFIG ?=
PYTEST_ARGS ?=
# Both cores: each test file runs whole on one pytest worker (its module-scoped servers are started once).
PARALLEL ?= -n auto --dist loadfile
# The functional tests (accounts, photos, social, visibility, nodes, the client API) again on the top rung
# (test_media_serving is the local media route's own; photos on S3 have tests/test_s3*.py).
TOP_RUNG_TESTS ?= tests/test_accounts.py tests/test_posts.py tests/test_upload_web.py tests/test_action_limits.py \
	tests/test_social.py tests/test_feed.py tests/test_home_pages.py tests/test_interactions.py tests/test_notifications.py \
	tests/test_tags.py tests/test_discover.py tests/test_visibility_matrix.py tests/test_live.py tests/test_nodes.py \
	tests/test_worker_faults.py tests/test_oauth.py tests/test_api.py tests/test_api_media.py tests/test_api_mastodon_py.py \
	tests/test_seed.py
BENCH_ARGS ?=

CONFIG_ARG := $(if $(CONFIG),--config $(CONFIG))

# The tests drive Debian's /usr/bin/chromium; Playwright must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.DEFAULT_GOAL := help
.PHONY: help venv test-deps run test bench lock clean

help:
	@sed -n '3,11s/^# \{0,1\}//p' Makefile

venv: $(VENV)/.installed

# Rebuilt only when the runtime lock changes.
$(VENV)/.installed: requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "Pinhole needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing)." >&2; \
	  echo "Install python3.11 (or newer) and run 'make PYTHON=python3.11 ...'." >&2; \
	  exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "'$(PYTHON)' cannot create virtual environments: install python3-venv (apt-get install python3-venv)." >&2; \
	  exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	@touch $@

test-deps: $(VENV)/.test-installed

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.lock
	$(PY) -m pip install --quiet --require-hashes -r requirements-test.lock
	@touch $@

run: venv
	$(PY) main.py migrate $(CONFIG_ARG)
	$(PY) main.py serve $(CONFIG_ARG)

# pytest's own exit code is kept in $(VENV)/.pytest-exit, since make reports any failing recipe as 2 (.ci/run reads it).
# The first failing pass's code is kept.
test: test-deps
	@rm -f $(VENV)/.pytest-exit
	@echo "$(PY) -m pytest $(PARALLEL) $(PYTEST_ARGS)"
	@$(PY) -m pytest $(PARALLEL) $(PYTEST_ARGS); rc=$$?; echo $$rc > $(VENV)/.pytest-exit; \
	if [ -n "$(strip $(TOP_RUNG_TESTS))" ]; then \
		echo "PINHOLE_TEST_RUNG=top $(PY) -m pytest $(PARALLEL) $(TOP_RUNG_TESTS) $(PYTEST_ARGS)"; \
		PINHOLE_TEST_RUNG=top $(PY) -m pytest $(PARALLEL) $(TOP_RUNG_TESTS) $(PYTEST_ARGS); top=$$?; \
		if [ $$rc -eq 0 ]; then rc=$$top; echo $$rc > $(VENV)/.pytest-exit; fi; \
	fi; exit $$rc

bench: venv
	$(PY) scaling/bench/run.py $(BENCH_ARGS)

# Resolved for CPython 3.11 on x86_64 Linux (manylinux_2_28, which Debian 12 and python:3.11-slim-bookworm satisfy);
# uv records the hashes of every file of each pinned release, so other platforms install from the same lock.
# uv is pinned and kept in a scratch venv outside the repo; uv keeps the pins already in a lock file unless told
# otherwise (make lock LOCK_ARGS=--upgrade). The command run for each file is:
#   uv pip compile pyproject.toml [--extra test] --python-version 3.11 \
#     --python-platform x86_64-manylinux_2_28 --generate-hashes --custom-compile-command "make lock" -o FILE
LOCK_ARGS  ?=
UV_VERSION ?= 0.13.9
UV_VENV    ?= /tmp/pinhole-uv-$(UV_VERSION)
UV         := $(UV_VENV)/bin/uv
UV_COMPILE := $(UV) pip compile pyproject.toml --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--generate-hashes --custom-compile-command "make lock" --quiet $(LOCK_ARGS)

lock:
	test -x $(UV) || { $(PYTHON) -m venv $(UV_VENV) && $(UV_VENV)/bin/pip install --quiet uv==$(UV_VERSION); }
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra test -o requirements-test.lock

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis tests/artifacts
	find . -path ./storage -prune -o -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
