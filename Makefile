# DuraChat: `make run` serves the app, `make test` sets up and runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PG_BIN := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))
# The web UI (web/) is built into the package; rebuilt only when its sources change.
WEB_BUILD := src/durachat/static/index.html
WEB_DEPS := web/node_modules/.installed
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts \
	web/tsconfig.json web/tsconfig.node.json web/package.json web/package-lock.json

.PHONY: install run test check format system-deps lock clean web web-check

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_DEPS)

$(WEB_BUILD): $(WEB_DEPS) $(WEB_SOURCES)
	cd web && npm run --silent build -- --logLevel warn

web: $(WEB_BUILD)

install: $(STAMP) $(WEB_BUILD)

# Accounts are on: the first visit shows the setup page that creates the admin.
# `DURACHAT_AUTH=off make run` is single-user mode (no login) on loopback.
run: install
	$(BIN)/durachat serve

# Binaries the tests start privately (never the machine's running services).
system-deps:
	@if [ -z "$(PG_BIN)" ]; then \
		echo "installing PostgreSQL binaries for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi
	@if ! command -v redis-server >/dev/null; then \
		echo "installing Redis binaries for the multi-node tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	fi
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then \
		echo "installing nginx for the deployment-config test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

# Type checks (svelte-check, tsc) and unit tests (vitest) of the web UI.
web-check: $(WEB_DEPS)
	cd web && npm run --silent check && npm test --silent

check: install web-check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

test: install system-deps check
	$(BIN)/pytest -q

# Re-pin every dependency after editing pyproject.toml.
lock: install
	$(BIN)/python -m pip install -q pip-tools
	$(BIN)/pip-compile -q --extra test --strip-extras --no-emit-index-url -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
	rm -rf web/node_modules src/durachat/static
