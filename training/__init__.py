"""Datasets and training entry points."""
