"""A network connection is opened at init.

## What it does
Checks for network connections, and clients that hold them, opened in code that runs at
initialisation: `socket.socket(...).connect()`, `socket.create_connection()`,
`http.client.HTTPConnection(...)`/`HTTPSConnection(...)`, `urllib.request.urlopen()` outside a
`with` block, `requests.get()`/`post()`/.../`Session()`, `httpx` clients and calls, `urllib3` pools,
`aiohttp.ClientSession()`, mail and FTP clients (`smtplib.SMTP`, `imaplib`, `poplib`, `ftplib`),
and the `connect` of network database drivers: `psycopg2`, `psycopg`, `pymysql`, `MySQLdb`,
`mysql.connector`, `asyncpg`, `oracledb`/`cx_Oracle`, `pyodbc`, plus `redis.Redis()` and
`pymongo.MongoClient()`.

## Why is this bad?
The snapshot keeps the socket's file descriptor and the client's idea of its state, but not the
connection: the peer sees each clone's traffic on a TCP connection it may long have closed, several
clones may write on what they each believe is the same connection, and a TLS session restored in
many clones reuses the same keys and sequence numbers. Requests fail or hang until a timeout, at
the worst moment: the first invocation after a restore.

## Example
```python
import psycopg2
import requests

DB = psycopg2.connect("dbname=app host=db.internal")
HTTP = requests.Session()
HTTP.get("https://api.example.com/warmup")


def handler(event, context):
    with DB.cursor() as cur:
        cur.execute("select 1")
    return HTTP.get("https://api.example.com/items").json()
```

## Use instead
Connect on first use, and forget the connection after every restore so each clone opens its own:
```python
import psycopg2
import requests

import snapsafe

_db = None
_http = None


def db():
    global _db
    if _db is None:
        _db = psycopg2.connect("dbname=app host=db.internal")
    return _db


def http():
    global _http
    if _http is None:
        _http = requests.Session()
    return _http


@snapsafe.after_restore
def forget_connections():
    global _db, _http
    _db = _http = None


def handler(event, context):
    with db().cursor() as cur:
        cur.execute("select 1")
    return http().get("https://api.example.com/items").json()
```

## Notes
A connection used in a `with` block is closed before init ends and is not reported (except
`psycopg2.connect`, whose `with` ends a transaction but keeps the connection open).
`sqlite3.connect()` is a local file, not a network connection. `boto3.client()`/`resource()` and
`sqlalchemy.create_engine()` are not reported: they open connections lazily, on the first request,
and botocore retries a stale pooled connection; a request made at init through them is not
followed either. `redis.Redis()` also connects lazily, but it is reported because it is almost
always used at once and its pool then keeps the socket.
"""

from __future__ import annotations

from ..model import InitExpr, Rule
from .common import matches

_HTTP_VERBS = ("get", "post", "put", "patch", "delete", "head", "options", "request", "stream")
_OPENS = frozenset(
    {
        "socket.socket().connect",
        "socket.socket().connect_ex",
        "socket.create_connection",
        "ssl.create_connection",
        "http.client.HTTPConnection",
        "http.client.HTTPSConnection",
        "urllib.request.urlopen",
        "requests.Session",
        "requests.session",
        "requests.sessions.Session",
        "httpx.Client",
        "httpx.AsyncClient",
        "urllib3.PoolManager",
        "urllib3.HTTPConnectionPool",
        "urllib3.HTTPSConnectionPool",
        "urllib3.connection_from_url",
        "aiohttp.ClientSession",
        "smtplib.SMTP",
        "smtplib.SMTP_SSL",
        "imaplib.IMAP4",
        "imaplib.IMAP4_SSL",
        "poplib.POP3",
        "poplib.POP3_SSL",
        "ftplib.FTP",
        "ftplib.FTP_TLS",
        "psycopg2.connect",
        "psycopg.connect",
        "psycopg.Connection.connect",
        "psycopg.AsyncConnection.connect",
        "psycopg_pool.ConnectionPool",
        "pymysql.connect",
        "pymysql.Connect",
        "pymysql.connections.Connection",
        "MySQLdb.connect",
        "MySQLdb.Connect",
        "mysql.connector.connect",
        "asyncpg.connect",
        "asyncpg.create_pool",
        "oracledb.connect",
        "cx_Oracle.connect",
        "pyodbc.connect",
        "redis.Redis",
        "redis.StrictRedis",
        "redis.from_url",
        "redis.Redis.from_url",
        "redis.client.Redis",
        "pymongo.MongoClient",
        "motor.motor_asyncio.AsyncIOMotorClient",
    }
    | {f"requests.{verb}" for verb in _HTTP_VERBS}
    | {f"httpx.{verb}" for verb in _HTTP_VERBS}
)
#: their ``with`` block does not close the connection
_WITH_KEEPS_OPEN = frozenset({"psycopg2.connect"})


class ConnectionAtInit(Rule):
    name = "connection-at-init"
    summary = "network connection opened at init"
    fix = "Connect lazily in the handler, or (re)connect in an @snapsafe.after_restore hook"

    def check(self, expr: InitExpr) -> str | None:
        if not matches(expr.qualname, _OPENS):
            return None
        if expr.in_with and expr.qualname not in _WITH_KEEPS_OPEN:
            return None
        return f"`{expr.display()}` opens a network connection at init; clones inherit a dead or shared socket"
