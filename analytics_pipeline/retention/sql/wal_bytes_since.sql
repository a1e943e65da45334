-- The bytes of WAL written since a position taken before the batch (wal_position): the batch's,
-- with whatever other sessions wrote meanwhile (the platform's commits wait for those too).
SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), CAST(:since AS pg_lsn))::bigint
