"""Section modules of ``scripts/bench.py``: each measures one target of issue 15 and returns a ``Section``."""
