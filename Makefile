# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# torch and spandrel (the upscale extra): the suite and GPU workers need them, the demo not.
UPSCALE_STAMP := $(VENV)/.upscale-stamp

.PHONY: demo test upscale-deps lint format system-deps test-deps services stack stack-down ui bench docs-images clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# An empty, migrated Prefect database that mpt's temporary server starts from.
	$(BIN)/python -m api.cli.tempserver
	touch $(STAMP)

$(UPSCALE_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,upscale]'
	touch $(UPSCALE_STAMP)

upscale-deps: $(UPSCALE_STAMP)

system-deps:
	@bash deployments/install-system-deps.sh

# Only the suite needs these (a browser for UI tests): make demo stays lean.
test-deps:
	@bash deployments/install-test-deps.sh

# Renders output/demo/video.mp4 offline from the script shipped in resources/demo.
demo: $(STAMP) system-deps
	$(BIN)/mpt make --script-file resources/demo/script.txt --music random --out output/demo

services:
	@bash deployments/start-services.sh

# The service on this machine: Prefect server, work pools, deployments, workers, REST facade.
stack: $(STAMP) $(UPSCALE_STAMP) system-deps
	@bash deployments/stack.sh up

stack-down:
	@bash deployments/stack.sh down

# The web UI alone, on 127.0.0.1:8501, against a running facade (MPT_WEBUI__API_URL).
ui: $(STAMP)
	$(BIN)/mpt ui

test: $(STAMP) $(UPSCALE_STAMP) system-deps test-deps services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

format:
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench: $(STAMP) $(UPSCALE_STAMP) system-deps services
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/cold.py
	$(BIN)/python bench/backgrounds.py
	$(BIN)/python bench/batch.py
	$(BIN)/python bench/cache_rerun.py
	$(BIN)/python bench/render.py
	$(BIN)/python bench/render.py --long 180
	$(BIN)/python bench/api_load.py
	$(BIN)/python bench/mcp_load.py
	$(BIN)/python bench/upscale.py
	$(BIN)/python bench/storage.py --batch

# The README's pictures, from the last make test (a frame of the demo, the web UI in Chromium).
docs-images:
	mkdir -p docs/images
	cp .test-output/screenshots/demo-frame.jpg .test-output/screenshots/create-form-1280x800.png \
	  .test-output/screenshots/create-390x844.png docs/images/

clean:
	rm -rf output .pytest_cache
