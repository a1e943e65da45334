-- The WAL position before a batch, for the bytes of WAL it writes (wal_bytes_since).
SELECT pg_current_wal_insert_lsn()
