"""Synthetic recommendation impression logs (see data.generator)."""
