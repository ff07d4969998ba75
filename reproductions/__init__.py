"""Reproduction specs: published tables as data, run by `orchestrate reproduce NAME` (see
orchestrator/reproduction_spec.py for the schema)."""
