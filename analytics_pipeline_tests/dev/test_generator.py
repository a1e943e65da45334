"""The simulated platform: deterministic for a seed, within the contract except for the requested
malformed share, plausible in its proportions, and loaded without losing a character.

Data sets stay small (one or two tenants, a few thousand events); speed is measured in
bench/generator_bench.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from analytics_pipeline.cli import main
from analytics_pipeline.core import events
from analytics_pipeline.core.months import shift_months
from analytics_pipeline.core.settings import ConfigError
from analytics_pipeline.dev import generator, load

SMALL = dict(tenants=1, users_per_tenant=120, start=dt.date(2025, 1, 1), end=dt.date(2025, 5, 1))


def _options(**changes) -> generator.SeedOptions:
    return generator.SeedOptions(**(SMALL | changes))


def _digest(rows) -> tuple[int, str]:
    digest = hashlib.sha256()
    count = 0
    for table, row in rows:
        digest.update(repr((table, row)).encode())
        count += 1
    return count, digest.hexdigest()


def _event_rows(options, tenants=None) -> list[tuple]:
    return [row for table, row in generator.generate(options, tenants) if table == "analytics_events"]


# --- Determinism --------------------------------------------------------------------------------


def test_same_seed_same_rows_and_another_seed_other_rows():
    first = _digest(generator.generate(_options(seed=7)))
    assert first[0] > 2_000
    assert _digest(generator.generate(_options(seed=7))) == first
    assert _digest(generator.generate(_options(seed=8))) != first


def test_same_rows_in_another_process_with_another_hash_seed():
    """Nothing depends on Python's per-process string hashing (set or dict order of strings)."""
    script = (
        "import datetime as dt, hashlib;"
        "from analytics_pipeline.dev import generator as g;"
        "o = g.SeedOptions(tenants=1, users_per_tenant=30, start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 1), seed=7);"
        "print(hashlib.sha256(repr(list(g.generate(o))).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }
    options = _options(users_per_tenant=30, end=dt.date(2025, 3, 1), seed=7)
    assert digests == {hashlib.sha256(repr(list(generator.generate(options))).encode()).hexdigest()}


def test_a_tenants_rows_do_not_depend_on_how_many_tenants_are_generated():
    three = _options(tenants=3, users_per_tenant=40)
    all_rows = [row for _, row in generator.generate(three)]
    alone = [row for _, row in generator.generate(three, tenants=range(2, 3))]
    assert alone == [row for row in all_rows if row[0] == "org_0_002" or row[1] == "org_0_002"]
    assert alone


def test_late_and_malformed_shares_leave_the_other_events_unchanged():
    plain = _event_rows(_options())
    noisy = _event_rows(_options(late_rate=0.2, malformed_rate=0.1))
    assert [r[0] for r in noisy] == [r[0] for r in plain]
    same = [(p, n) for p, n in zip(plain, noisy, strict=True) if n[3] == p[3] and n[4] == p[4]]
    assert 0.85 * len(plain) < len(same) < 0.95 * len(plain)  # about 10% damaged
    assert all(p[:7] == n[:7] for p, n in same)  # only created_at may differ


# --- Options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"tenants": 0}, "tenants"),
        ({"users_per_tenant": 0}, "users_per_tenant"),
        ({"seed": -1}, "seed"),
        ({"malformed_rate": 1.5}, "malformed_rate"),
        ({"late_rate": -0.1}, "late_rate"),
        ({"start": dt.date(2025, 5, 1)}, "start"),
        ({"end": dt.date.today() + dt.timedelta(days=2)}, "end"),
    ],
)
def test_invalid_options_are_refused_by_name(changes, named):
    with pytest.raises(ConfigError, match=named):
        _options(**changes)


def test_default_range_is_the_fourteen_months_ending_today():
    options = generator.SeedOptions()
    today = dt.datetime.now(dt.UTC).date()
    assert options.end == today
    assert options.start == shift_months(today, -14)
    assert shift_months(dt.date(2025, 3, 31), -1) == dt.date(2025, 2, 28)
    assert shift_months(dt.date(2024, 12, 15), 2) == dt.date(2025, 2, 15)


# --- Loaded data --------------------------------------------------------------------------------


def _problems(conn) -> list[tuple]:
    return conn.execute(
        sa.text(
            'SELECT event_type, event_data::text, user_id, "timestamp", created_at, '
            'analytics_event_problem(event_type, event_data, user_id, "timestamp", created_at), '
            "statement_timestamp() AT TIME ZONE 'UTC' FROM analytics_events"
        )
    ).all()


def test_without_malformed_rate_every_event_satisfies_the_contract(db_url, engine):
    result = load.load(db_url, _options(seed=3))
    with engine.connect() as conn:
        rows = _problems(conn)
    assert len(rows) == result.events > 2_000
    assert [r for r in rows if r[5] is not None] == []


def test_the_malformed_share_is_the_one_requested_and_python_agrees(db_url, engine):
    result = load.load(db_url, _options(seed=4, malformed_rate=0.05))
    with engine.connect() as conn:
        rows = _problems(conn)
    malformed = [r for r in rows if r[5] is not None]
    assert len(malformed) == result.malformed
    assert 0.035 < len(malformed) / len(rows) < 0.065
    reasons = {r[5] for r in malformed}
    assert "event_data is not an object" in reasons and len(reasons) >= 3
    python = [
        events.problem(t, json.loads(d, parse_float=Decimal), u, at, created, checked_at=now)
        for t, d, u, at, created, _, now in rows
    ]
    assert python == [r[5] for r in rows]


def test_late_events_are_recorded_hours_later_but_not_after_the_range(db_url, engine):
    options = _options(seed=5, late_rate=0.1)
    load.load(db_url, options)
    with engine.connect() as conn:
        total, late, least, most, last_created, first_ts, last_ts = conn.execute(
            sa.text(
                """
                SELECT count(*), count(*) FILTER (WHERE created_at <> "timestamp"),
                       min(created_at - "timestamp") FILTER (WHERE created_at <> "timestamp"),
                       max(created_at - "timestamp"), max(created_at), min("timestamp"), max("timestamp")
                FROM analytics_events
                """
            )
        ).one()
    assert 0.08 < late / total < 0.12
    assert least > dt.timedelta(0) and most <= dt.timedelta(hours=48)
    end = dt.datetime.combine(options.end, dt.time())
    assert last_created < end and last_ts < end and first_ts >= dt.datetime.combine(options.start, dt.time())


def test_counts_and_links_are_plausible(db_url, engine):
    # Six months of 100 users (about 10,000 events); with this seed every type occurs.
    options = _options(seed=4, users_per_tenant=100, end=dt.date(2025, 7, 1))
    load.load(db_url, options)
    with engine.connect() as conn:
        n = dict(conn.execute(sa.text("SELECT event_type, count(*) FROM analytics_events GROUP BY 1")).all())
        total = sum(n.values())
        assert set(n) == set(events.EVENT_TYPES)
        assert n["user_signup"] == 100 == conn.execute(sa.text("SELECT count(*) FROM users")).scalar()
        assert (n["session_started"] + n["user_login"] + n["page_view"]) / total > 0.6
        assert 2 < n["page_view"] / n["session_started"] < 8
        assert 0.01 < n["payment_failed"] / (n["payment_failed"] + n["payment_completed"]) < 0.2
        assert n["payment_refunded"] < 0.12 * n["payment_completed"]
        assert 0.05 * 100 < n["subscription_started"] < 0.6 * 100
        assert n["subscription_cancelled"] <= n["subscription_started"]
        assert n["tournament_completed"] <= n["tournament_started"]
        assert n["tournament_started"] + n["tournament_cancelled"] <= n["tournament_created"]
        assert n["player_registered"] > 2 * n["tournament_created"]

        def scalar(sql: str):
            return conn.execute(sa.text(sql)).scalar()

        # Users are created at their signup; nobody acts before signing up.
        assert scalar("""SELECT count(*) FROM users u JOIN analytics_events e ON e.user_id = u.id
                         AND e.event_type = 'user_signup' WHERE e."timestamp" <> u.created_at""") == 0
        assert scalar("""SELECT count(*) FROM analytics_events e JOIN users u ON u.id = e.user_id
                         WHERE e."timestamp" < u.created_at""") == 0
        # Every subscription event and subscription payment refers to a started subscription.
        assert scalar("""SELECT count(*) FROM analytics_events e WHERE e.event_data ? 'subscription_id'
                         AND NOT EXISTS (SELECT 1 FROM analytics_events s WHERE s.event_type = 'subscription_started'
                         AND s.event_data->>'subscription_id' = e.event_data->>'subscription_id'
                         AND s."timestamp" <= e."timestamp")""") == 0
        # Entry fees and registrations belong to tournaments created before them.
        assert scalar("""SELECT count(*) FROM analytics_events e WHERE e.event_data ? 'tournament_id'
                         AND e.event_type <> 'tournament_created'
                         AND NOT EXISTS (SELECT 1 FROM analytics_events t WHERE t.event_type = 'tournament_created'
                         AND t.event_data->>'tournament_id' = e.event_data->>'tournament_id'
                         AND t."timestamp" <= e."timestamp")""") == 0
        # Refunds refund a completed payment, by at most its amount.
        assert scalar("""SELECT count(*) FROM analytics_events r WHERE r.event_type = 'payment_refunded'
                         AND NOT EXISTS (SELECT 1 FROM analytics_events p WHERE p.event_type = 'payment_completed'
                         AND p.event_data->>'payment_id' = r.event_data->>'payment_id'
                         AND analytics_amount(p.event_data) >= analytics_amount(r.event_data)
                         AND p."timestamp" < r."timestamp")""") == 0
        # Every interval and several formats occur.
        assert scalar("""SELECT count(DISTINCT event_data->>'interval') FROM analytics_events
                         WHERE event_type = 'subscription_started'""") >= 3
        assert scalar("""SELECT count(DISTINCT event_data->>'format') FROM analytics_events
                         WHERE event_type = 'tournament_created'""") >= 4


@pytest.mark.parametrize("copy_text", [True, False], ids=["copy-text lines (load)", "rows via write_row"])
def test_copy_carries_quotes_backslashes_unicode_and_newlines(db_url, engine, copy_text):
    options = _options(users_per_tenant=1)
    tenant = generator.make_tenant(options, 0)
    texts = [
        'say "hello"',
        "back\\slash \\n not a newline",
        "new\nline\r\nand\ttab",
        "Ünïcødé ✓ 🎲 \u2028",
        "\\.",  # COPY's end-of-data marker on a line of its own
        "\\N",  # COPY's NULL marker
    ]
    # JSON text given as such may hold raw tabs and line breaks between its tokens.
    given = ['{"path": "new\\nline"}', '{\n\t"path":\r\n"\\\\."}']
    with engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO organizations (id, name) VALUES (:id, 'x')"), {"id": tenant.id})
        conn.execute(sa.text("INSERT INTO users (id, tenant_id) VALUES (:u, :t)"), {"u": tenant.user_id(0), "t": tenant.id})
        conn.commit()
        with conn.connection.driver_connection.cursor() as cursor, cursor.copy(generator.EVENTS_COPY) as copy:
            write = copy.write if copy_text else copy.write_row
            emit, written = generator.event_writer(tenant, options, write, generator.EventCounts(), copy_text=copy_text)
            for i, text in enumerate(texts):
                emit("page_view", {"path": text, "n": i}, tenant.user_id(0), f"s'{i}\"", options.start_ts + i)
            for i, text in enumerate(given):
                emit("page_view", text, tenant.user_id(0), None, options.start_ts + 99 + i)
        conn.commit()
        stored = conn.execute(sa.text("SELECT event_data, session_id FROM analytics_events ORDER BY id")).all()
    assert written() == len(texts) + len(given)
    assert [row.event_data["path"] for row in stored] == [*texts, "new\nline", "\\."]
    assert [row.session_id for row in stored] == ["s'0\"", "s'1\"", "s'2\"", "s'3\"", "s'4\"", "s'5\"", None, None]


def test_load_copies_the_rows_generate_gives(db_url, engine):
    """The load formats COPY text itself; what arrives must be exactly the rows of `generate`,
    with the late and malformed shares (whose JSON text differs from the intact events') in."""
    options = _options(tenants=2, users_per_tenant=25, seed=5, malformed_rate=0.05, late_rate=0.05)
    expected = [
        (row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6], row[7])
        for row in _event_rows(options)
    ]
    load.load(db_url, options)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text(
                """SELECT id, tenant_id, event_type, event_data::text, user_id, session_id,
                          to_char("timestamp", 'YYYY-MM-DD HH24:MI:SS'), to_char(created_at, 'YYYY-MM-DD HH24:MI:SS')
                   FROM analytics_events ORDER BY id"""
            )
        ).all()
    assert len(expected) > 1_500
    assert [(r[0], r[1], r[2], json.loads(r[3]), *r[4:]) for r in stored] == sorted(expected)


# --- Loading paths and the command --------------------------------------------------------------


def _catalog(conn) -> set[tuple]:
    indexes = conn.execute(sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = 'analytics_events'")).scalars()
    constraints = conn.execute(
        sa.text("SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
                "WHERE conrelid = 'analytics_events'::regclass")
    ).all()
    return set(indexes) | {tuple(c) for c in constraints}


def test_bulk_load_restores_every_index_and_constraint(db_url, engine):
    with engine.connect() as conn:
        before = _catalog(conn)
    result = load.load(db_url, _options(users_per_tenant=20))
    assert result.bulk
    with engine.connect() as conn:
        assert _catalog(conn) == before
    assert len(before) >= 8  # pk, 4 indexes, pk and 2 foreign-key constraints


def test_second_load_is_incremental_and_the_same_seed_is_refused(db_url, engine):
    first = load.load(db_url, _options(users_per_tenant=20, seed=1))
    second = load.load(db_url, _options(users_per_tenant=20, seed=2))
    assert first.bulk and not second.bulk
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM analytics_events")).scalar() == first.events + second.events
    with pytest.raises(ConfigError, match="org_1_000 already exist.*another --seed"):
        load.load(db_url, _options(users_per_tenant=20, seed=1))


def _seed(args, db_url):
    return CliRunner().invoke(main, ["seed", *args], env={"DATABASE_URL": db_url}, catch_exceptions=False)


def test_seed_command_loads_and_reports(db_url, engine):
    result = _seed(["--tenants", "2", "--users-per-tenant", "15", "--start", "2025-01-01",
                    "--end", "2025-03-01", "--seed", "9", "--late-rate", "0.1"], db_url)
    assert result.exit_code == 0, result.output
    assert "loaded 2 organizations, 30 users and" in result.output
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM organizations WHERE id LIKE 'org_9_%'")).scalar() == 2


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--tenants", "0"], "'--tenants'"),
        (["--users-per-tenant", "x"], "'--users-per-tenant'"),
        (["--malformed-rate", "1.2"], "'--malformed-rate'"),
        (["--late-rate", "-1"], "'--late-rate'"),
        (["--start", "2025-13-01"], "'--start'"),
        (["--start", "2025-03-01", "--end", "2025-02-01"], "'--start'"),
        (["--end", "2999-01-01"], "'--end'"),
        (["--seed", "-3"], "'--seed'"),
    ],
)
def test_seed_command_refuses_invalid_options_by_name(args, named, db_url):
    result = CliRunner().invoke(main, ["seed", *args], env={"DATABASE_URL": db_url})
    assert result.exit_code == 2
    assert named in result.output


def test_dev_loads_the_demo_only_into_an_empty_database(db_url, engine, monkeypatch):
    from analytics_pipeline.dev import demo
    from analytics_pipeline.dev.stack import _demo_to_start

    # The demo's size (a million events) belongs to the benchmarks; its wiring is tested small.
    monkeypatch.setattr(generator, "demo_options", lambda: _options(users_per_tenant=10, seed=11))
    options, resumed = _demo_to_start(db_url)
    assert options == _options(users_per_tenant=10, seed=11) and not resumed
    with engine.connect() as conn:
        loaded = conn.execute(sa.text("SELECT count(*) FROM analytics_events")).scalar()
    assert loaded > 0
    demo.first_start_made(db_url)  # its backfill done
    assert _demo_to_start(db_url) == (None, False)  # not empty any more: nothing is added
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM analytics_events")).scalar() == loaded
