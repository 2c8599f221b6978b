"""Shared core: records, task families, answer extraction, verifiers, rewards and metrics.

Nothing in here imports `teacher`, `student` or `pipelines`: every other package builds on it.
"""

__version__ = "0.1.0"
