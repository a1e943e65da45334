"""Scheduled email reports: queries, rendering, delivery (being built)."""

import dagster as dg

defs = dg.Definitions()
