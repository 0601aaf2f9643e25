# Two commands do all the set-up on a fresh machine:
#   make demo   # builds .venv, then runs the main job on the embedded dataset
#   make test   # builds .venv, then runs the test suite
#   make compare  # Mask R-CNN vs YOLO-mask vs YOLO-seg on the embedded dataset (~30 min on 2 CPU cores)
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= output/demo
COMPARE_DIR ?= output/compare

.PHONY: venv demo compare test clean

$(VENV)/.installed: requirements.txt setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -r requirements.txt
	# detectron2 is not on PyPI by its name: sal-detectron2 is upstream detectron2's Python code,
	# tagged cp310, so it goes straight into the venv without its (already installed) deps.
	$(PY) -m pip install --no-deps --upgrade --only-binary=:all: --python-version 3.10 \
		--target "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" sal-detectron2==0.7.2
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/yolo-mask demo --output-dir $(DEMO_DIR)

compare: venv
	$(VENV)/bin/yolo-mask compare --output-dir $(COMPARE_DIR)

test: venv
	$(PY) -m pytest -q tests

# The tests that compare numbers across runtimes, frameworks, releases or CPU kernels (`pytest -m numerics`), again
# under torch's non-vectorised kernels and under oneDNN limited to AVX2: each changes the last digits of float32
# results, as another CPU does, and the tolerances (tests/numerics.py) must hold on any x86-64 CPU. (OpenVINO's CPU
# plugin, with its own oneDNN, cannot build a deconvolution under ONEDNN_MAX_CPU_ISA: the first run checks it.)
.PHONY: test-numerics
test-numerics: venv
	ATEN_CPU_CAPABILITY=default $(PY) -m pytest -q -m numerics tests
	ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -m pytest -q -m numerics -k "not openvino" tests

clean:
	rm -rf $(VENV) output *.egg-info
