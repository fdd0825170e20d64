# The two commands: `make run` starts the whole portal on embedded defaults, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test lint setup bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

.env: | $(VENV)/.installed
	$(BIN)/python -m portal.dev_env

setup: $(VENV)/.installed .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo

## Web on http://127.0.0.1:$(PORT)/admin/, a Celery worker and beat, the sandbox vendors and demo data.
run: setup
	@echo ""
	@echo "  Portal:  http://127.0.0.1:$(PORT)/admin/   (site admin: admin / portal-demo)"
	@echo "  API:     http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  Health:  http://127.0.0.1:$(PORT)/healthz"
	@echo ""
	PORTAL_PORT=$(PORT) SANDBOX_BASE_URL=http://127.0.0.1:$(PORT)/sandbox PATH="$(CURDIR)/$(BIN):$$PATH" \
		$(BIN)/honcho --procfile portal/Procfile --app-root . --env .env start

## The test suite on SQLite (set DATABASE_URL / CELERY_BROKER_URL to run it on PostgreSQL + Redis).
test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf var .pytest_cache
