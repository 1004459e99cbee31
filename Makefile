# The README's two commands: `make demo` runs the main job, `make test` passes the tests.
# Each creates its own virtual environment on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test venv lint bench clean system-packages vendor-echarts

$(BIN)/gateway: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/gateway

venv: $(BIN)/gateway

demo: venv system-packages
	$(BIN)/gateway demo

# sshd (the demo's and the tests'), Chromium, wrk and a CJK font, installed in one visible place
# (tests/system-packages.sh); the demo and the tests only check that they are there.
system-packages:
	bash tests/system-packages.sh

test: venv system-packages
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: venv
	$(BIN)/ruff check gateway adapters tests bench
	$(BIN)/mypy gateway adapters
	$(BIN)/lint-imports

# The console's charts: Apache ECharts from the npm registry, kept in the package (agency networks are
# closed, so never a CDN); run when moving to a new version, then commit the folder.
ECHARTS ?= 6.1.0
ECHARTS_DIR := gateway/api/console/vendor/echarts
vendor-echarts:
	rm -rf build/echarts && mkdir -p build/echarts
	cd build/echarts && npm pack --silent echarts@$(ECHARTS) && tar xzf echarts-$(ECHARTS).tgz
	cp build/echarts/package/dist/echarts.common.min.js $(ECHARTS_DIR)/echarts.min.js
	cp build/echarts/package/LICENSE build/echarts/package/NOTICE build/echarts/package/licenses/LICENSE-d3 $(ECHARTS_DIR)/
	@echo "now update $(ECHARTS_DIR)/SOURCE.txt: version $(ECHARTS), integrity \
	  $$(npm view echarts@$(ECHARTS) dist.integrity), sha256 $$(sha256sum $(ECHARTS_DIR)/echarts.min.js | cut -d' ' -f1)"

clean:
	rm -rf $(VENV) demo-data .pytest_cache
