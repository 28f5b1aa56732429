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

.PHONY: setup system venv plugin training demo test test-qgis340 test-core test-qgis bench models abu package clean

setup: system venv plugin

system:
	@tools/install_system.sh

# numpy stays within the major version of the system's numpy, which QGIS and GDAL are built against: below 2
# on Debian 12 (QGIS 3.22), 2.x on Debian 13 (QGIS 3.40, where a numpy<2 pin would try to compile numpy).
CONSTRAINTS := $(VENV)/constraints.txt
PIN_NUMPY = $(PY_SYSTEM) -c 'import numpy; print("numpy<%d" % (int(numpy.__version__.split(".")[0]) + 1))' > $(CONSTRAINTS)

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PY_SYSTEM) -m venv --system-site-packages $(VENV)
	$(PIN_NUMPY)
	$(PY) -m pip install -q --disable-pip-version-check -c $(CONSTRAINTS) -r requirements-dev.txt
	@touch $@

venv: system $(VENV)/.installed

# The companion training tools (CPU PyTorch from its exact pin): needed by their tests and `make models`.
$(VENV)/.training: $(VENV)/.installed training/requirements.txt training/requirements-spectra.txt
	$(PIN_NUMPY)
	$(PY) -m pip install -q --disable-pip-version-check -c $(CONSTRAINTS) -r training/requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r training/requirements-spectra.txt
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
	$(PY) -m pytest $(PYTEST_ARGS)

# The same on QGIS 3.40 LTR, in a Debian 13 chroot cached under .build/qgis340 (root; see docs/architecture.md, Testing).
# PYTEST_ARGS="tests/qgis tests/core" runs part of the suite there.
test-qgis340:
	tools/qgis340.sh $(PYTEST_ARGS)

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
	$(PY) -m training geology-ratios
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
