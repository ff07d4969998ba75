"""The bottom floor every other package builds on: the one records schema and the statistics (no torch)."""
