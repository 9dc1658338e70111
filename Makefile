# The two commands a newcomer needs: `make up` (the stack) and `make test` (everything tested).
SHELL := /bin/bash
PY := .venv/bin/python
WORKERS ?= 1
# With a Docker engine, the stack runs under compose (scripts/compose_stack.sh: Docker and a POSIX
# shell, no Python); without one, as local processes (needs Python 3.11 or 3.12).

.PHONY: help deps python-check venv up down status logs native-up native-down native-status native-logs test test-fast generate loadtest bench screenshots clean k8s-smoke

help:
	@echo "make up        start the stack (WORKERS=3 make up for three workers); Docker if its daemon answers,"
	@echo "               else native (MODE=docker|native to choose; MODE=docker DRY_RUN=1 make up: print, run nothing)"
	@echo "make down      stop it;  make status: health of each service;  make logs: tail the logs"
	@echo "make test      everything: unit, config checks, end to end, live alerts, faults; runs native stacks"
	@echo "               (apt-get, a venv; stop a Docker stack with make down first)"
	@echo "make test-fast unit tests, config checks, chart rendering, doc checks, ruff, shellcheck (no stack)"
	@echo "make generate  regenerate alert rules and dashboards from mixin/"
	@echo "make bench     what monitoring costs: throughput ratios, capacity, memory, alert latency (docs/performance.md)"
	@echo "make screenshots  PNGs of the app, Flower, a firing alert, an alert email and /alerts for the README (stack must be up)"
	@echo "make k8s-smoke the Helm chart on a real cluster (current kubectl context, kube-prometheus-stack installed)"
	@echo "make loadtest  load through the app: SCENARIO=steady|burst|failures|backlog|cpu|memory|slow|mixed ARGS='--rate 20 --duration 30'"

# Native mode and the tests need Python 3.11/3.12: say so before installing anything.
python-check:
	@sh scripts/find_python.sh >/dev/null

deps: python-check
	@bash native/install_debian_packages.sh

venv: .venv/.installed .venv-exporter/.installed

.venv/.installed: pyproject.toml
	@sh scripts/find_python.sh >/dev/null
	$$(sh scripts/find_python.sh) -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

.venv-exporter/.installed: exporter/requirements.txt
	@sh scripts/find_python.sh >/dev/null
	$$(sh scripts/find_python.sh) -m venv .venv-exporter
	.venv-exporter/bin/pip install -q --disable-pip-version-check -r exporter/requirements.txt
	@touch $@

# PROFILE=production: Flower basic auth on, Grafana anonymous access off.
# MODE=auto (default): Docker when its daemon answers, native when there is no docker CLI at all,
# and a clear stop when the CLI exists but the daemon does not answer. MODE=docker / MODE=native
# choose. DRY_RUN=1 (Docker path): print the .env and the commands `make up` would run, run none.
PROFILE ?= dev
MODE ?= auto
# BROKER=redis: Redis as the broker (compose.redis.yaml; natively native/broker.py); default RabbitMQ.
export PROFILE MODE WORKERS DRY_RUN BROKER
STACK := sh scripts/compose_stack.sh

# Docker path: scripts/compose_stack.sh; native path: the native-* targets below.
ROUTE = mode=$$($(STACK) mode $@) || exit 1; \
	if [ "$$mode" = docker ]; then exec $(STACK) $@; fi; \
	if [ -n "$(DRY_RUN)" ] && [ "$(DRY_RUN)" != 0 ]; then echo "DRY_RUN covers the Docker path (MODE=docker)"; exit 1; fi; \
	exec $(MAKE) --no-print-directory native-$@

up:
	@$(ROUTE)
down:
	@$(ROUTE)
status:
	@$(ROUTE)
logs:
	@$(ROUTE)

native-up: python-check deps venv
	$(PY) -m native up --workers $(WORKERS)
native-down native-status:
	@$(PY) -m native $(@:native-%=%)
native-logs:
	@$(PY) -m native logs

generate: venv
	$(PY) -m mixin

# Five pytest processes side by side (tests/run.py), native stacks of their own: the stack's tests, the
# long alert tests (two processes), the Redis-broker suite, everything else with pytest-xdist. The
# slowest 20: .native/test-durations*.txt.
# The tests run native stacks on the ports a compose stack publishes: first make sure none runs.
test:
	@$(STACK) test-guard
	@$(MAKE) --no-print-directory deps venv
	$(PY) -m tests.run

# No apt-get, no network, no stack: unit tests, config checks (promtool/amtool when installed),
# chart rendering, doc checks, ruff and shellcheck.
test-fast: venv
	$(PY) -m pytest -n 2 -p no:cacheprovider tests/unit tests/config tests/k8s tests/docs --ignore=tests/docs/test_docs_live.py

# Needs a real cluster (kubectl context, helm, kube-prometheus-stack): never part of `make test`.
k8s-smoke: venv
	$(PY) tests/k8s/smoke.py

loadtest: venv
	$(PY) -m loadtest $(SCENARIO) $(ARGS)

bench: deps venv
	$(PY) -m bench $(ARGS)

screenshots: venv
	$(PY) -m tools.screenshots

clean: down
	rm -rf .native
