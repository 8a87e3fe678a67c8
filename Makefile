# Renewdesk: `make run` serves the console, `make test` runs every test. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
PORT ?= 5000
export ENV_NAME ?= development

.PHONY: run test test-sqlite bench translations catalogs clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

catalogs: $(VENV)/.installed
	@$(VENV)/bin/pybabel compile --use-fuzzy -d translations >/dev/null

run: catalogs
	$(FLASK) db upgrade
	$(FLASK) seed-demo --if-empty
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

# The whole suite on SQLite; with TEST_DATABASE_URL (PostgreSQL) it runs there instead.
test: catalogs
	@if [ -z "$$TEST_DATABASE_URL" ]; then echo "== Tests on SQLite (set TEST_DATABASE_URL=postgresql+psycopg://… to run them on PostgreSQL; .ci/run does both)"; \
	  else echo "== Tests on PostgreSQL ($$(echo $$TEST_DATABASE_URL | sed 's#//[^@]*@#//…@#'))"; fi
	ENV_NAME=testing $(PY) -m pytest -n 2 --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

bench: catalogs
	ENV_NAME=testing $(PY) bench/run.py

# Extract new strings and merge them into every catalog (then translate, then `make catalogs`).
translations: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o translations/messages.pot --no-location --sort-output .
	$(VENV)/bin/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching

clean:
	rm -rf $(VENV) instance .pytest_cache
