"""Drives Weir with Python's Postgres clients and prints what they saw, as JSON, for
tests/it/python_clients.rs to check. Runs in a venv with either SQLAlchemy 2.x, psycopg 3 and
psycopg2, or SQLAlchemy 1.4 and psycopg2 (as Superset pins it).

usage: python_clients.py PORT
"""

import datetime
import decimal
import json
import sys

import psycopg2
import sqlalchemy as sa

port = int(sys.argv[1])
dsn = f"host=127.0.0.1 port={port} user=weir dbname=weir"
seen = {"sqlalchemy": sa.__version__}


def plain(value):
    if isinstance(value, (datetime.datetime, datetime.date, decimal.Decimal)):
        return str(value)
    return value


ROUND_TRIP = [1.5, -7, "naïve text", True, None, decimal.Decimal("12.25"),
              datetime.datetime(2024, 3, 1, 9, 30, 0, 123000)]

# psycopg2: the simple protocol, parameters interpolated by the client.
with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
    cur.execute("SELECT %s::float8, %s::bigint, %s::text, %s::boolean, %s::text, "
                "%s::numeric(10,2), %s::timestamp", ROUND_TRIP)
    seen["psycopg2"] = [plain(v) for v in cur.fetchone()]
    seen["psycopg2_types"] = [d.type_code for d in cur.description]
    cur.execute("SELECT %s::json, %s::jsonb", ('{"a": 1}', '[1, 2]'))
    seen["psycopg2_json"] = list(cur.fetchone())
    seen["psycopg2_json_types"] = [d.type_code for d in cur.description]

# psycopg 3: the extended protocol, binary parameters and results, a prepared statement.
try:
    import psycopg
except ImportError:
    psycopg = None
if psycopg is not None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        seen["psycopg_server_version"] = conn.info.server_version
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT %b::float8, %b::bigint, %b::text, %b::boolean, %b::text, "
                        "%b::numeric(10,2), %b::timestamp", ROUND_TRIP)
            seen["psycopg"] = [plain(v) for v in cur.fetchone()]
            totals = []
            for i in range(8):
                cur.execute("SELECT %s::float8 * 2", (i + 0.5,), prepare=True)
                totals.append(cur.fetchone()[0])
            seen["psycopg_prepared"] = totals
            cur.execute("SELECT id, name FROM users WHERE id = %s", (2,), prepare=True)
            seen["psycopg_lookup"] = list(cur.fetchone())

# asyncpg: binary everything, types learned from the server's parameter descriptions.
try:
    import asyncio
    import asyncpg
except ImportError:
    asyncpg = None
if asyncpg is not None:
    async def with_asyncpg():
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="weir", database="weir")
        try:
            seen["asyncpg_server_version"] = list(conn.get_server_version()[:2])
            row = await conn.fetchrow(
                "SELECT $1::float8, $2::bigint, $3::text, $4::boolean, $5::text, "
                "$6::numeric(10,2), $7::timestamp", *ROUND_TRIP)
            seen["asyncpg"] = [plain(v) for v in row]
            row = await conn.fetchrow(
                "SELECT $1::date, $2::bytea, $3::interval, $4::timestamptz, $5::int4, "
                "$6::int2, $7::float4",
                datetime.date(2024, 3, 1), b"\x00\xffab", datetime.timedelta(days=1, seconds=5),
                datetime.datetime(2024, 3, 1, 9, 30, tzinfo=datetime.timezone.utc), 42, 7, 0.5)
            seen["asyncpg_more"] = [
                str(row[0]), row[1].hex(), row[2].total_seconds(), row[3].isoformat(),
                row[4], row[5], row[6]]
            row = await conn.fetchrow("SELECT $1::json, $2::jsonb", '{"a": 1}', '[1, 2]')
            seen["asyncpg_json"] = list(row)
            lookup = await conn.prepare("SELECT id, name FROM users WHERE id = $1")
            seen["asyncpg_lookup"] = [list(await lookup.fetchrow(i)) for i in (1, 2)]
        finally:
            await conn.close()
    asyncio.run(with_asyncpg())

# SQLAlchemy's inspector, as Superset lists and reflects relations.
engine = sa.create_engine(f"postgresql+psycopg2://weir@127.0.0.1:{port}/analytics")
with engine.connect() as conn:
    seen["version"] = conn.execute(sa.text("SELECT version()")).scalar()
    seen["server_version_info"] = list(engine.dialect.server_version_info)
    preview = conn.execute(sa.text("SELECT id, name FROM users ORDER BY id LIMIT 100"))
    seen["preview"] = [list(r) for r in preview]
    chart = conn.execute(sa.text(
        "SELECT DATE_TRUNC('minute', ts) AS minute, count(*) AS n FROM events "
        "WHERE ts >= TO_TIMESTAMP('2024-03-01 09:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') "
        "AND ts < TO_TIMESTAMP('2024-03-01 10:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') "
        "GROUP BY DATE_TRUNC('minute', ts) ORDER BY minute"))
    seen["chart"] = [[plain(v) for v in r] for r in chart]
inspector = sa.inspect(engine)
seen["schemas"] = inspector.get_schema_names()
seen["tables"] = sorted(inspector.get_table_names())
seen["views"] = sorted(inspector.get_view_names())
if hasattr(inspector, "get_materialized_view_names"):
    seen["materialized_views"] = sorted(inspector.get_materialized_view_names())
seen["columns"] = {
    name: [{"name": c["name"], "type": str(c["type"]), "nullable": c["nullable"],
            "default": c["default"]} for c in inspector.get_columns(name)]
    for name in ["users", "events", "per_kind"]
}
seen["primary_key"] = inspector.get_pk_constraint("users")
seen["primary_key"] = {k: seen["primary_key"][k] for k in ("name", "constrained_columns")}
seen["indexes"] = inspector.get_indexes("users")
seen["foreign_keys"] = inspector.get_foreign_keys("users")
# What Superset does when a dataset is added: reflect the whole table (columns, keys, indexes,
# comments, options), then ask for each part again.
seen["reflected"] = {}
for name in ["users", "events", "per_kind"]:
    table = sa.Table(name, sa.MetaData(), autoload_with=engine)
    seen["reflected"][name] = {
        "columns": [c.name for c in table.columns],
        "primary_key": [c.name for c in table.primary_key.columns],
        "comment": table.comment,
        "indexes": len(table.indexes),
        "foreign_keys": len(table.foreign_keys),
    }
seen["table_comment"] = inspector.get_table_comment("users")
seen["unique_constraints"] = inspector.get_unique_constraints("users")
seen["check_constraints"] = inspector.get_check_constraints("users")
seen["table_options"] = inspector.get_table_options("users")
with engine.connect() as conn:
    seen["databases"] = [r[0] for r in conn.execute(sa.text("SELECT datname FROM pg_database"))]
    seen["current_database"] = conn.execute(sa.text("SELECT current_database()")).scalar()
print(json.dumps(seen))
