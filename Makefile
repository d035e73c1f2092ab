# deepbloom: the two commands a newcomer runs are `make train` and `make test`; both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
# A local Flowers102 copy: $DEEPBLOOM_DATA if set, else ../shared/data/flowers-102 when it exists (the course machines).
SHARED := $(abspath ../shared/data/flowers-102)
export DEEPBLOOM_DATA ?= $(if $(wildcard $(SHARED)/setid.mat),$(SHARED),)

.PHONY: env browser train test fresh export readme timings

$(BIN)/.installed: settings.ini setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

env: $(BIN)/.installed

# Train the model handed to people (lesson 08b's `people` preset: Flowers102's training and validation photos, five per class
# kept back for the "not a flower it knows" threshold, eight training photos in ten through the phone chain, 45 epochs), score
# the 6,149 test photos clean and as phone photos; prints one JSON line, then both accuracies. A model already at models/deepbloom.safetensors
# is kept unless asked: make train ARGS=--overwrite. The benchmark recipe the lessons compare: deepbloom-train --split official
train: env
	$(BIN)/deepbloom-train --preset people $(ARGS)

# Debian's Chromium and ChromeDriver (and an emoji font for the app's title), for lesson 98's test of the app in a real browser;
# installed with apt-get when missing (as root, or with sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); pkgs="chromium chromium-driver fonts-noto-color-emoji"; \
	  $$sudo apt-get install -y -q $$pkgs >/dev/null 2>&1 || { $$sudo apt-get update -q >/dev/null && $$sudo apt-get install -y -q $$pkgs >/dev/null; }; }
	@chromium --version 2>/dev/null && chromedriver --version

# First the quick checks: deepbloom/ must match the notebooks, and README.md what nbs/index.ipynb makes. Then, as one queue
# (.ci/check.py), offline on CPU: every notebook's tests (nbdev's test_nb, as nbdev_test runs them); the docs pages as a reader
# sees them (.ci/docs.py); every lesson as a learner runs it, alone in a fresh environment (.ci/fresh_runtime.py: its environment
# is a copy of one with Colab's packages that the first check on a machine installs, minutes, and later ones reuse, seconds).
# Two jobs at a time with torch on half the cores each, the longest first: on 2 cores two torch processes that each take both
# cores slow each other far more than twice, while two with one thread each finish sooner than one after the other.
# The tests' temporary files go to a folder of their own outside the checkout, removed afterwards (the notebooks make temporary
# folders and leave them to the runtime; lesson 80 checks that a temporary folder is not a git checkout).
# make test ARGS=--log also appends each job's seconds to nbs/results/check_times.jsonl, the order of later checks (commit it).
test: env browser
	$(BIN)/nbdev_export
	git diff --exit-code --stat -- deepbloom || (echo "deepbloom/ does not match the notebooks: run nbdev_export" && exit 1)
	$(BIN)/python .ci/readme.py --check
	$(BIN)/python .ci/check.py $(ARGS)

# Each lesson alone in a fresh environment, from its own install cell, every cell run, Flowers102 from a local mirror,
# DEEPBLOOM_QUICK=1, two lessons at a time: the fresh jobs of make test's queue (.ci/check.py --fresh; .ci/fresh_runtime.py).
# One lesson: make fresh LESSONS=05_evaluate (ARGS=--reuse-env keeps the environment)
fresh: env
	env -u DEEPBLOOM_DATA $(BIN)/python .ci/check.py --fresh $(LESSONS) $(ARGS)

export:
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

# Each notebook's test time, appended to nbs/results/test_times.jsonl (the run times the lessons quote; lesson 97 checks them)
timings: env
	$(BIN)/python .ci/test_times.py

# README.md from nbs/index.ipynb, as plain markdown (no HTML, no warnings, no machine paths); `make test` checks it is up to date
readme: env
	$(BIN)/python .ci/readme.py > README.md
