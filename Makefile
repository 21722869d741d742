# The two set-up commands the README promises on a fresh Debian 12 machine: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench deps lint clean-demo

deps:
	bash scripts/system-deps.sh
	bash scripts/start-libvirtd.sh

$(BIN)/vmctl: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

lint: $(BIN)/vmctl
	$(BIN)/ruff check vmctl tests bench
	$(BIN)/ruff format --check vmctl tests bench
	$(BIN)/mypy

test: deps $(BIN)/vmctl lint
	$(BIN)/pytest

demo: deps $(BIN)/vmctl
	bash scripts/demo.sh

clean-demo: $(BIN)/vmctl
	$(BIN)/vmctl destroy -f examples/demo.yaml --yes

bench: deps $(BIN)/vmctl
	$(BIN)/python -m bench
