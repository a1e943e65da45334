-- Whether an expired event was committed since a state's last absorb (the placeholder:
-- state.Committed, through the ingest_xid index): that state does not hold it yet, and the
-- cleanup refuses.
SELECT EXISTS (
    SELECT 1 FROM analytics_events AS e
    WHERE e."timestamp" < :cutoff AND {committed}
)
