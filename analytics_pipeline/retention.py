"""Retention cleanup of raw events (being built)."""

import dagster as dg

defs = dg.Definitions()
