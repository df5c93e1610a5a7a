# The two commands of the README: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test venv clean package.json firmware

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "outstack needs Python 3.11 or newer"; exit 1; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { apt-get update -qq && \
	  apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

run: $(STAMP) keys/ota-key.pem
	$(BIN)/outstack sim --fresh

keys/ota-key.pem: | $(STAMP)
	$(BIN)/outstack ota keygen --out keys

test: $(STAMP) keys/ota-key.pem
	$(BIN)/python -m pytest -q

package.json: $(STAMP)
	$(BIN)/python -m outstack.packaging

# Real firmware with the framework and the project's app frozen in (boards/<BOARD>/ has a
# MicroPython board definition): the demo's here; `outstack firmware` in a project of your own.
firmware: $(STAMP)
	$(BIN)/outstack firmware --board $(or $(BOARD),mps2-an385)

clean:
	rm -rf build $(VENV)
