# Two commands on a fresh clone:  `make demo`  and  `make test`.
# Both install into a project-local virtual environment (.venv), idempotently:
# the install is redone only when pyproject.toml changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	bash scripts/install-browser.sh
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/fieldscan demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --follow-imports=silent spectra device fieldscan firmware_mocks service
	$(BIN)/python -m pytest -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_identify.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
