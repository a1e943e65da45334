"""The local development stack of `analytics-pipeline dev`, its demo and the data generator
(docs/architecture.md)."""
