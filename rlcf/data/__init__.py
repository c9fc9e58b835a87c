"""Datasets: multi-agent Minari datasets (write, validate, load into tensors) and LLM rollout datasets."""
