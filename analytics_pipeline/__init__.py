"""analytics-pipeline: revenue, retention and tournament metrics from a multi-tenant event stream."""
