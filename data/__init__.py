"""Synthetic recommendation impression logs: data.world (world, events), data.writer (TFRecords), data.truth."""
