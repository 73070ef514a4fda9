# The two commands of the README: `make demo` and `make test`. Both create .venv if needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export BL832_HOME ?= $(CURDIR)/.bl832
export DAGSTER_HOME ?= $(BL832_HOME)/dagster

.PHONY: demo demo-facilities fakes test dev bench lint venv deploy-local deploy-stop deploy-status

$(BIN)/bl832: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/bl832

# Debian's chromium for the browser test and bench_ui.py (Playwright drives it; pip brings none):
# installed with apt-get as root, else the script says what to run with sudo.
/usr/bin/chromium:
	sh scripts/ensure-chromium

# The instance settings travel with the site: dagster.yaml is copied into its DAGSTER_HOME.
$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: venv $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/bl832 demo

# The same scan through the production resources, against local fakes of the four services.
demo-facilities: venv $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/bl832 demo --facilities fake

# The fakes alone, with a settings file for them, for `dagster dev` against them.
fakes: venv
	$(BIN)/python -m bl832_assets.fakes

test: venv /usr/bin/chromium
	$(BIN)/python -m pytest

dev: venv $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/bl832 pools
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# The production deployment on this machine (docs/deployment.md): code server, webserver, daemon,
# a Celery worker and the metrics exporter, on PostgreSQL (database bl832_deploy, created on first
# start) and RabbitMQ at 127.0.0.1 unless the environment names others (deploy/bl832.env.example).
# Pid files and logs: $(BL832_HOME)/deploy/run and $(BL832_HOME)/deploy/logs.
deploy-local: venv
	$(BIN)/bl832 deploy start

deploy-stop: venv
	$(BIN)/bl832 deploy stop

deploy-status: venv
	$(BIN)/bl832 deploy status

bench: venv /usr/bin/chromium
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_backfill.py
	$(BIN)/python benchmarks/bench_copy.py
	$(BIN)/python benchmarks/bench_discover.py
	$(BIN)/python benchmarks/bench_prune.py
	$(BIN)/python benchmarks/bench_pyramid.py
	$(BIN)/python benchmarks/bench_recon.py
	$(BIN)/python benchmarks/bench_scan.py
	$(BIN)/python benchmarks/bench_ui.py
	$(BIN)/python benchmarks/bench_deploy.py

lint: venv
	$(BIN)/ruff check bl832_assets tests benchmarks
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg check defs
