"""Alembic environment: compares against analytics_pipeline.core.schema and runs on the URL (or the
connection) handed over by analytics_pipeline.core.migrate."""

from alembic import context
from sqlalchemy import create_engine, pool

from analytics_pipeline.core.schema import metadata

config = context.config


def include_object(obj, name, type_, reflected, compare_to):
    # Only the tables this project models; the platform's other tables are not ours to diff.
    if type_ == "table":
        return name in metadata.tables
    return True


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        compare_type=True,
        compare_server_default=False,
        transaction_per_migration=True,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
