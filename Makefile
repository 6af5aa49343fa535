# `make run` serves the hub on 127.0.0.1:8000 with an embedded SQLite database under var/;
# `make test` installs what the tests need and runs the suite on SQLite and PostgreSQL.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo reset test lint bench venv postgres pcscd window browser oidc debian clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# The five reference department receivers run beside the hub (ports 8101-8105, see
# config/departments.toml), so records can be seen flowing: GET http://127.0.0.1:8103/received.
# Development webhook secrets are generated once into var/webhooks.env.
RECEIVERS := hr-social-security:8101 housing:8102 education:8103 health:8104 civil-affairs:8105
# On its first start (an empty database) `make run` loads this many generated holders (a few
# seconds), whose events the relay then delivers to the receivers; later starts load nothing.
FIRST_START_HOLDERS := 300

run: venv
	mkdir -p var
	test -s var/webhooks.env || $(BIN)/hub department secrets > var/webhooks.env
	$(BIN)/hub db upgrade
	$(BIN)/hub demo --if-empty --holders $(FIRST_START_HOLDERS)
	set -a; . var/webhooks.env; set +a; \
	trap 'kill $$(jobs -p) 2>/dev/null' EXIT INT TERM; \
	for pair in $(RECEIVERS); do \
	  $(BIN)/hub department serve --department $${pair%%:*} --port $${pair##*:} & \
	done; \
	$(BIN)/hub serve

# The full generated data set (10,000 holders, with proofs, about 3 min) for an empty database:
# after `make run` has loaded its small one, `make reset` first.
demo: venv
	mkdir -p var
	$(BIN)/hub db upgrade
	$(BIN)/hub demo

# Start over (development only, asks nothing): deletes var/, i.e. the SQLite database, its master
# key, the webhook secrets, the receivers' stores (their webhook-ids are the old database's event
# numbers) and the card and window files. A database named by HUB_DATABASE_URL is left alone.
reset:
	rm -rf var

# PostgreSQL 15 on 127.0.0.1:5432 (database `test`) is part of the machine; start it if down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
	  echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1

# The card tests drive a real PC/SC stack: pcscd with the vsmartcard-vpcd virtual reader
# (127.0.0.1:35963), and pyscard, which builds from source against libpcsclite-dev with swig.
PCSC_PACKAGES := pcscd vsmartcard-vpcd libpcsclite-dev swig
WINDOW_STAMP := $(VENV)/.window

# Debian packages the tests need, installed when missing: `make debian PACKAGES="..."`.
debian:
	@missing=$$(for package in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q 'ok installed' || echo $$package; \
	done); \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

pcscd:
	@$(MAKE) -s debian PACKAGES="$(PCSC_PACKAGES)"
	@pgrep -x pcscd >/dev/null || (mkdir -p /run/pcscd && pcscd)

# The console's browser tests drive Debian's headless Chromium through Debian's chromedriver
# (same version, nothing downloaded at run time), with CJK fonts so Chinese pages render.
BROWSER_PACKAGES := chromium chromium-driver fonts-noto-cjk

browser:
	@$(MAKE) -s debian PACKAGES="$(BROWSER_PACKAGES)"

# The identity platform staff sign in through in the tests: node's oidc-provider from npm, at
# the version package-lock.json pins (npm ci installs exactly that, or fails).
OIDC_STAMP := tests/oidc/node_modules/.package-lock.json

oidc: $(OIDC_STAMP)

$(OIDC_STAMP): tests/oidc/package.json tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error

# The window agent's extra (pyscard); the hub itself installs and serves without it.
window: $(WINDOW_STAMP)

$(WINDOW_STAMP): $(STAMP) | pcscd
	$(BIN)/python -m pip install -q -e '.[dev,window]'
	touch $@

# Lint first: it takes seconds, and a style or type slip should fail before the suite runs.
# One worker per core (pytest-xdist); each has its own PostgreSQL database, and the card tests
# take turns at the virtual reader (tests/card/pcsc.py).
test: venv postgres pcscd window browser oidc lint
	$(BIN)/python -m pytest -n auto --durations=20

lint: venv
	$(BIN)/ruff format --check hub tests bench alembic
	$(BIN)/ruff check hub tests bench alembic
	$(BIN)/mypy hub bench

# wrk (Debian) generates the load; each benchmark starts the server it measures.
bench: venv postgres pcscd window oidc
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/tokens.py
	$(BIN)/python bench/tokens.py --database-url postgresql://127.0.0.1:5432/test
	$(BIN)/python bench/registry.py
	$(BIN)/python bench/registry.py --database-url postgresql://127.0.0.1:5432/test
	$(BIN)/python bench/sweep.py --database-url postgresql://127.0.0.1:5432/test
	$(BIN)/python bench/schemas.py
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/observe.py
	$(BIN)/python bench/delivery.py --database-url postgresql://127.0.0.1:5432/test
	$(BIN)/python bench/taps.py --database-url postgresql://127.0.0.1:5432/test
	$(BIN)/python bench/audit_locks.py
	$(BIN)/python bench/audit_scale.py
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
