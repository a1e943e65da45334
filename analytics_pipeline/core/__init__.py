"""What everything uses and nothing owns: settings, the database and its schema, the resources,
the embedded servers, migrations, SQL loading, calendar months, the event contract (docs/architecture.md)."""
