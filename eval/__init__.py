"""Evaluation, baselines, reports and videos."""
