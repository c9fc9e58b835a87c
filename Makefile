# Thin wrapper over tasks.py, which needs nothing but Python 3.11+ and does its own set-up.
PYTHON ?= python3
.PHONY: demo test bench setup lock
demo test bench setup lock:
	$(PYTHON) tasks.py $@ $(ARGS)
