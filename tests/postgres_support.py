"""Throw-away databases on the machine's PostgreSQL, for tests that count or own every row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A database of its own, dropped (connections and all) after, whatever happened."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    server = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with server.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield name
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        server.dispose()
