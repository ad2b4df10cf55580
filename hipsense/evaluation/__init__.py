"""Accuracy measured on real, public recordings (see docs/evaluation.md)."""
