"""PostgreSQL for the event store's tests: a database of the test session's own on the
server at ``STORESIDE_TEST_PG`` (default: the local server, trust auth; ``.ci/run`` installs
and starts one when none answers), created at the start and dropped at the end. Each test
gets a fresh schema in it (``search_path`` in the URL), which is ~100x cheaper than a
database per test and as isolated."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

SERVER = os.environ.get("STORESIDE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def with_database(url: str, database: str, *, schema: str | None = None) -> str:
    parts = urlsplit(url)
    query = "" if schema is None else f"options={quote(f'-csearch_path={schema}')}"
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", query, ""))


@contextmanager
def test_database() -> Iterator[str]:
    """The URL of a new database, dropped (with any connection left to it) afterwards."""
    name = f"storeside_test_{secrets.token_hex(4)}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield with_database(SERVER, name)
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def fresh_schema(database_url: str) -> str:
    """A URL of ``database_url`` whose tables go into a new, empty schema."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    parts = urlsplit(database_url)
    return with_database(database_url, parts.path.lstrip("/"), schema=schema)
