# Two commands on a fresh machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RECORDS ?= 10000

.PHONY: demo test lint bench install system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gsp demo --records $(RECORDS)

# From Debian's packages: PostgreSQL server binaries (the tests start a throwaway cluster with them)
# and promtool and prometheus (package prometheus; the tests check the alert rules with promtool and
# scrape a running platform with prometheus, tests/test_metrics_contract.py), kubectl (package
# kubernetes-client; the tests render deploy/k8s with its kustomize), and chromium (the console's
# browser tests drive it with Playwright, tests/console/; no `playwright install`).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	{ command -v promtool && test -x /usr/bin/prometheus; } >/dev/null || missing="$$missing prometheus"; \
	command -v kubectl >/dev/null || missing="$$missing kubernetes-client"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

# ruff and mypy, configured in pyproject.toml; CI runs this before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/gsp bench

clean:
	rm -rf $(VENV) .gsp .pytest_cache .hypothesis
