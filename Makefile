# The two commands a newcomer needs: `make up` (the stack) and `make test` (everything tested).
SHELL := /bin/bash
PY := .venv/bin/python
WORKERS ?= 1
# With a Docker engine, the stack runs under compose; without one, as local processes.
DOCKER := $(shell docker info >/dev/null 2>&1 && echo yes)

.PHONY: help deps venv up down status logs test test-fast generate loadtest bench screenshots clean k8s-smoke

help:
	@echo "make up        start the stack (WORKERS=3 make up for three workers)"
	@echo "make down      stop it;  make status: health of each service;  make logs: tail the logs"
	@echo "make test      everything: unit, config checks, integration, end to end (installs what is missing)"
	@echo "make test-fast unit tests and config checks only"
	@echo "make generate  regenerate alert rules and dashboards from mixin/"
	@echo "make bench     what monitoring costs: throughput ratios, capacity, memory, alert latency (docs/performance.md)"
	@echo "make screenshots  PNGs of the app, Flower and a firing alert for the README (stack must be up)"
	@echo "make k8s-smoke the Helm chart on a real cluster (current kubectl context, kube-prometheus-stack installed)"
	@echo "make loadtest  load through the app: SCENARIO=steady|burst|failures|backlog|cpu|memory|slow|mixed ARGS='--rate 20 --duration 30'"

deps:
	@bash native/install_debian_packages.sh

venv: .venv/.installed .venv-exporter/.installed

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

.venv-exporter/.installed: exporter/requirements.txt
	python3 -m venv .venv-exporter
	.venv-exporter/bin/pip install -q --disable-pip-version-check -r exporter/requirements.txt
	@touch $@

# PROFILE=production: Flower basic auth on, Grafana anonymous access off.
PROFILE ?= dev
export PROFILE
# BROKER=redis: Redis as the broker (compose.redis.yaml natively: native/broker.py); default RabbitMQ.
BROKER ?=
export BROKER
COMPOSE := docker compose -f compose.yaml $(if $(filter production,$(PROFILE)),-f compose.production.yaml) $(if $(filter redis,$(BROKER)),-f compose.redis.yaml)

ifeq ($(DOCKER),yes)
up: venv
	$(PY) -m native init-env
	$(COMPOSE) up -d --build --scale celery_worker=$(WORKERS) --wait
down:
	$(COMPOSE) down
status:
	$(COMPOSE) ps
logs:
	$(COMPOSE) logs -f
else
up: deps venv
	$(PY) -m native up --workers $(WORKERS)
down:
	@$(PY) -m native down
status:
	@$(PY) -m native status
logs:
	@$(PY) -m native logs
endif

generate: venv
	$(PY) -m mixin

test: deps venv
	$(PY) -m pytest tests

test-fast: deps venv
	$(PY) -m pytest tests/unit tests/config

# Needs a real cluster (kubectl context, helm, kube-prometheus-stack): never part of `make test`.
k8s-smoke: venv
	$(PY) tests/k8s/smoke.py

loadtest: venv
	$(PY) -m loadtest $(SCENARIO) $(ARGS)

bench: deps venv
	$(PY) -m bench $(ARGS)

screenshots: venv
	$(PY) docs/screenshots.py

clean: down
	rm -rf .native
