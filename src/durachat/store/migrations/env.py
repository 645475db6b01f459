"""Alembic environment of DuraChat: run the migrations on the connection it is given.

`store/migrate.py` passes an open connection in `config.attributes["connection"]`;
this module never creates an engine and never commits on its own (the caller owns
the transaction). SQLite needs batch mode to alter tables, so it is on there.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from durachat.store.tables import metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "DuraChat migrations run through `durachat migrate` or Store.migrate(), "
            "which pass an open connection; the bare alembic command is not supported"
        )
    run_migrations(connection)


main()
