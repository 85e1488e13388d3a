# Two commands on a fresh machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RECORDS ?= 10000

.PHONY: demo test bench install postgres clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gsp demo --records $(RECORDS)

# PostgreSQL server binaries from Debian's packages: the tests start a throwaway cluster with them.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq postgresql >/dev/null; fi; }

test: $(STAMP) postgres
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/gsp bench

clean:
	rm -rf $(VENV) .gsp .pytest_cache .hypothesis
