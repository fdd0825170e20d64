# The two commands: `make run` starts the whole portal on embedded defaults, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The PostgreSQL server bench-smoke creates (and drops) the benches' databases on; empty for SQLite only.
BENCH_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres

# pip-compile's options for both locks: every file of every pinned release hashed; pip and setuptools pinned too
# (--allow-unsafe), since a hash-checked install refuses anything unpinned; extras folded into their packages, so
# the runtime lock can constrain the dev one; no index or find-links lines (those are this machine's pip config).
LOCK_OPTIONS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links

# Fails when a pin in the top-level lists (every file after the first) is not the version the lock (the first file)
# holds: a list edited without `make lock`. Names compare as PyPI normalises them (case, '-', '_', '.'; extras dropped).
LOCK_CHECK := awk 'function norm(s) { s = tolower(s); sub(/\[.*\]/, "", s); gsub(/[-_.]+/, "-", s); return s } \
	FNR == 1 { file++ } \
	file == 1 && /^[A-Za-z0-9]/ { lock = FILENAME; split($$1, p, "=="); pinned[norm(p[1])] = p[2] } \
	file > 1 && /^[A-Za-z0-9]/ { split($$1, p, "=="); n = norm(p[1]); \
		if (!(n in pinned)) has = "no " n; else if (pinned[n] != p[2]) has = n "==" pinned[n]; else next; \
		print FILENAME ": " $$1 ", but " lock " has " has "; run make lock"; stale = 1 } \
	END { exit stale }'

.PHONY: run test lint lock lock-check setup bench-smoke mutate clean

# pip itself comes from the dev lock (pip-tools needs it), so the venv's own pip is used only for that first install.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The locks pin every package with its hashes, so pip installs exactly them or nothing (--require-hashes).
$(VENV)/.installed: requirements.lock requirements-dev.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

## Regenerates requirements.lock and requirements-dev.lock from requirements.txt and requirements-dev.txt, keeping
## every pin the lists still allow; UPGRADE=1 moves every unlisted package to its newest release the lists allow.
lock: $(VENV)/.installed
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_OPTIONS) $(if $(UPGRADE),--upgrade) \
		--output-file=requirements.lock requirements.txt
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_OPTIONS) $(if $(UPGRADE),--upgrade) \
		--output-file=requirements-dev.lock requirements-dev.txt

## The locks hold every pin of the top-level lists (run by lint).
lock-check:
	@stale=0; $(LOCK_CHECK) requirements.lock requirements.txt || stale=1; \
		$(LOCK_CHECK) requirements-dev.lock requirements.txt requirements-dev.txt || stale=1; exit $$stale

.env: | $(VENV)/.installed
	$(BIN)/python -m portal.dev_env

setup: $(VENV)/.installed .env
	@$(BIN)/python manage.py migrate --noinput --verbosity 0
	@$(BIN)/python manage.py seed_demo

## Web on http://127.0.0.1:$(PORT)/admin/, a Celery worker and beat, the sandbox vendors and demo data.
run: setup
	@echo ""
	@echo "  Portal:  http://127.0.0.1:$(PORT)/admin/   (site admin: admin / portal-demo)"
	@echo "  API:     http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  Health:  http://127.0.0.1:$(PORT)/healthz"
	@echo "  Sandbox: http://127.0.0.1:$(PORT)/sandbox/   (the simulators, their credentials and knobs)"
	@echo "  Stop:    Ctrl-C"
	@echo ""
	@# portal/run.py starts portal/Procfile's processes and stops them cleanly on Ctrl-C (exit 0, no kill noise).
	@PORTAL_PORT=$(PORT) SANDBOX_BASE_URL=http://127.0.0.1:$(PORT)/sandbox PATH="$(CURDIR)/$(BIN):$$PATH" \
		$(BIN)/python -m portal.run

## The test suite on SQLite (set DATABASE_URL / CELERY_BROKER_URL to run it on PostgreSQL + Redis).
test: $(VENV)/.installed
	$(BIN)/python -m pytest

## Every bench in bench/ at a tiny size, on SQLite and on PostgreSQL: fails if one breaks (about a minute and a half).
bench-smoke: $(VENV)/.installed
	$(BIN)/python bench/smoke.py --postgres-url "$(BENCH_POSTGRES_URL)"

## Mutation testing of the core rules, one module at a time (mutants, killed, survivors each); MODULES= picks some.
mutate: $(VENV)/.installed
	nice -n 10 $(BIN)/python -m portal.mutate $(MODULES)

## Ruff; mypy on integrations/, members/ and portal/ (pyproject.toml): django-stubs' plugin loads the settings,
## DEBUG on so they need no real secrets, and ENV_FILE empty so a developer's .env does not change what is checked;
## and the import picture: no entry point imports another, integrations/ imports portal only as allowed.
lint: lock-check $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	ENV_FILE= DEBUG=true $(BIN)/mypy
	$(BIN)/python -m portal.import_picture

clean:
	rm -rf var .pytest_cache
