# The two commands a new machine needs: `make run` (serve the fixture catalogue on the embedded
# default: no Redis, no broker) and `make test` (lint, type-check, tests).
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export RECSYS_DATA_DIR ?= var

.PHONY: install run index test test-fast lint bench report clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The exact pin takes the CPU wheel on disk; anything looser pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

index: install
	@$(VENV)/bin/recsys index list | grep -q '^\*' || \
		$(VENV)/bin/recsys index build --catalogue fixtures/catalogue.jsonl

run: index
	RECSYS_TORCH_THREADS=1 RECSYS_BIND=127.0.0.1:$(PORT) $(VENV)/bin/gunicorn -c recsys/api/gunicorn_conf.py \
		'recsys.api:create_app()'

lint: install
	$(VENV)/bin/ruff check recsys workers tests bench fixtures
	$(VENV)/bin/ruff format --check recsys workers tests bench
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q

test-fast: install  # the tier that needs no model: seconds, for the edit-test loop
	$(VENV)/bin/pytest -q -m "not model"

bench: install
	$(PY) bench/relevance.py
	$(PY) bench/reindex.py --products 5000
	$(PY) bench/load.py --seconds 15 --concurrency 2 4 8

# Evaluation reports of every set of $(DATA) that is present (absent sets are skipped with a message).
DATA ?= ../shared/data
REPORTS ?= bench/results

report: install
	@for set in crowdflower homedepot; do \
		if [ -f $(DATA)/$$set/catalogue.jsonl ]; then \
			$(VENV)/bin/recsys eval --catalogue $(DATA)/$$set/catalogue.jsonl --queries $(DATA)/$$set/queries.tsv \
				--qrels $(DATA)/$$set/qrels.tsv --mode all --report $(REPORTS)/report-$$set || exit 1; \
		else echo "report: skipped $$set: $(DATA)/$$set/catalogue.jsonl is not here"; fi; \
	done
	@if [ -f $(DATA)/myntra/catalogue.jsonl ]; then \
		$(VENV)/bin/recsys eval-similar --catalogue $(DATA)/myntra/catalogue.jsonl --same category,gender \
			--grade2 colour --report $(REPORTS)/report-myntra || exit 1; \
	else echo "report: skipped myntra: $(DATA)/myntra/catalogue.jsonl is not here"; fi

clean:
	rm -rf $(VENV) var
