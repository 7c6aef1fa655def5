# Two commands set up a fresh Debian machine: `make demo` and `make test`.
# Both install what they need (Debian packages, the .venv with pinned versions)
# and are idempotent.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
# Every file the code uses from them is checked by tests/test_system_packages.py:
# gstreamer1.0-x has clockoverlay (the demo camera), libc6-dev the C headers
# of bench.ingest's publisher (gcc only recommends it; apt runs without recommends).
DEB_PACKAGES := python3-venv mosquitto mosquitto-clients postgresql ffmpeg chromium iproute2 util-linux \
	gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-tools gstreamer1.0-plugins-base \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav \
	gstreamer1.0-x libmosquitto-dev gcc libc6-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo run test test-fast lint bench system-deps venv clean

demo: system-deps venv
	$(BIN)/moydom demo

run: system-deps venv
	$(BIN)/moydom run

test: system-deps venv lint
	$(BIN)/pytest

test-fast: system-deps venv
	$(BIN)/pytest -m "not slow"

bench: system-deps venv
	$(BIN)/python -m bench.provision
	$(BIN)/python -m bench.ingest --messages 50000
	$(BIN)/python -m bench.alarms
	$(BIN)/python -m bench.recorder
	$(BIN)/python -m bench.live

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gateway devices recorder alarms tests bench
	$(BIN)/lint-imports --no-cache

# Installs only what is missing, so a second run costs a dpkg query.
system-deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing && \
		if echo " $$missing " | grep -q " mosquitto " && command -v systemctl >/dev/null \
			&& systemctl is-active --quiet mosquitto 2>/dev/null; then \
			echo "stopping the packaged mosquitto service: moydom runs its own broker on 1883"; \
			$(SUDO) systemctl disable --now mosquitto; \
		fi; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
