# The two commands: `make run` starts the whole portal on embedded defaults, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The PostgreSQL server bench-smoke creates (and drops) the benches' databases on; empty for SQLite only.
BENCH_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres

.PHONY: run test lint setup bench bench-smoke mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

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

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf var .pytest_cache
