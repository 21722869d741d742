# The two set-up commands the README promises on a fresh Debian 12 machine: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench deps system-deps libvirtd lint clean-demo

deps: system-deps libvirtd

system-deps:
	bash scripts/system-deps.sh

libvirtd:
	bash scripts/start-libvirtd.sh

# Order-only on system-deps: building libvirt-python needs libvirt-dev, even for `make lint` or `make -j`.
$(BIN)/vmctl: pyproject.toml | system-deps
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
