# Two commands set everything up on a fresh machine (see README.md):
#   make demo   installs mono into .venv and generates a dataset from the embedded default image
#   make test   installs mono with its test and FFCV extras (system packages too), lints and runs the tests
PYTHON ?= python3
VENV   ?= .venv
PIP     = $(VENV)/bin/python -m pip
# The one torch pin: the Docker images take it as build arguments whose defaults must equal these
# (tests/test_docker.py checks), and `make docker` passes them explicitly.
TORCH_VERSION       = 2.14.1
TORCHVISION_VERSION = 0.29.1
TORCH   = torch==$(TORCH_VERSION) torchvision==$(TORCHVISION_VERSION)
DOCKER_ARGS = --build-arg TORCH_VERSION=$(TORCH_VERSION) --build-arg TORCHVISION_VERSION=$(TORCHVISION_VERSION)

.PHONY: install install-dev system-deps demo lint test bench docker clean

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit("mono needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

install: $(VENV)/bin/python
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e .

system-deps:
	bash scripts/install-system-deps.sh

install-dev: system-deps $(VENV)/bin/python
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[dev,ffcv]'

demo: install
	$(VENV)/bin/mono-gen --preset cifar --out shards/demo
	$(VENV)/bin/mono-shards verify shards/demo
	$(VENV)/bin/mono-shards preview shards/demo -o shards/demo/preview.png

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/python -m pytest -q

bench: install-dev
	$(VENV)/bin/python bench/bench_generator.py
	$(VENV)/bin/python bench/bench_loaders.py

docker:
	docker build $(DOCKER_ARGS) -f docker/Dockerfile.gen -t mono-gen .
	docker build $(DOCKER_ARGS) -f docker/Dockerfile.train -t mono-train .

clean:
	rm -rf $(VENV) build *.egg-info
