# The README's two commands: `make dev` runs the product, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The npm packages of the platform's Prisma check (platform/prisma), exactly as locked.
PRISMA := platform/prisma
PRISMA_STAMP := $(PRISMA)/node_modules/.installed

.PHONY: dev test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Offline-safe: no install scripts (platform/prisma/.npmrc says why), no audit, no funding call.
# Without npm the suite still runs, and the tests of analytics_pipeline_tests/platform fail
# saying so.
$(PRISMA_STAMP): $(PRISMA)/package.json $(PRISMA)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd $(PRISMA) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else \
		echo "npm not found: the Prisma check (analytics_pipeline_tests/platform) will fail; install Node >= 20.19" >&2; \
	fi

dev: $(STAMP)
	$(BIN)/analytics-pipeline dev

# The slow tests (whole dev stacks) come first (conftest.py) and are handed out one at a time, so
# that both workers share them instead of one worker taking them all in its first chunk.
test: $(STAMP) $(PRISMA_STAMP)
	$(BIN)/pytest -n 2 --maxschedchunk=1

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .analytics/test $(PRISMA)/node_modules $(PRISMA)/generated $(PRISMA)/build $(PRISMA)/.check
