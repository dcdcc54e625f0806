.PHONY: install test slow_test quality style data bench

install:
	python3 -m venv .venv && .venv/bin/pip install -e ".[dev,smollm2]"

test:
	python -m pytest -q

slow_test:
	python -m pytest -q -m slow

quality:
	ruff check cftrain tests scripts
	ruff format --check cftrain tests scripts

style:
	ruff check --fix cftrain tests scripts
	ruff format cftrain tests scripts

data:
	python -m cftrain suites && git diff --exit-code data/

bench:
	python scripts/bench_data.py
