# DeepStrata: `make demo` (set up, then run the main job on a bundled sample) and `make test` (set up, run every test).
SHELL := /bin/bash
PY_SYSTEM := /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
PLUGINS := .build/plugins
export QT_QPA_PLATFORM := offscreen
export QGIS_PLUGINPATH := $(CURDIR)/$(PLUGINS)
export PYTHONPATH := $(CURDIR)/$(PLUGINS)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup system venv plugin training demo test test-core test-qgis bench models abu package clean

setup: system venv plugin

system:
	@tools/install_system.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PY_SYSTEM) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: system $(VENV)/.installed

# The companion training tools (CPU PyTorch from its exact pin): needed by their tests and `make models`.
$(VENV)/.training: $(VENV)/.installed training/requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check -r training/requirements.txt
	@touch $@

training: venv $(VENV)/.training

# QGIS imports the plugin folder by its name: expose this checkout as `deepstrata`, whatever the folder is called.
plugin: venv
	@mkdir -p $(PLUGINS)
	@ln -sfn $(CURDIR) $(PLUGINS)/deepstrata
	@tools/qgis_process plugins 2>/dev/null | grep -qx '\* deepstrata' || tools/qgis_process plugins enable deepstrata

demo: setup
	@$(PY) tools/demo.py

test: setup training
	$(PY) -m pytest

test-core: setup
	$(PY) -m pytest tests/core

bench: setup
	$(PY) benchmarks/bench_engine.py

# Retrain every shipped model from training/datasets (fixed seeds) and rewrite its report in training/reports;
# then the pretrained encoders (from ../shared/data) and the transfer-goal experiment (about 20 min more).
models: training
	$(PY) -m training landforms
	$(PY) -m training dem-anomaly
	$(PY) -m training geology
	$(PY) -m training ms-anomaly
	$(PY) -m training transfer-curve
	$(PY) -m training.analytic_tpi --output resources/models/landforms_tpi.onnx
	$(PY) -m training pretrain-encoders
	$(PY) -m training transfer-goal

# The ABU hyperspectral benchmark (autoencoder vs RX) from ../shared/data/anomaly/abu: training/reports/abu.
abu: training
	$(PY) -m training abu

# The plugin zip of HEAD: git archive honours .gitattributes export-ignore (tests, training, benchmarks, dev files);
# then tools/check_package.py fails the build on a link that leaves the zip, no LICENSE, incomplete metadata or dev files.
package:
	@mkdir -p dist && git archive --format=zip --prefix=deepstrata/ -o dist/deepstrata.zip HEAD
	@$(PY_SYSTEM) tools/check_package.py dist/deepstrata.zip

clean:
	rm -rf .build dist $(VENV)
