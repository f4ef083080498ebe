"""Users, networks and logged-out tokens in SQLite, through the stdlib only."""

from __future__ import annotations

import base64
import os
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, NamedTuple

from werkzeug.security import check_password_hash, generate_password_hash

from . import networks
from .errors import Conflict, NotFound
from .networks import Network

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    password_changed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS networks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version INTEGER NOT NULL,
    prefixlen INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    lo INTEGER NOT NULL,
    first BLOB NOT NULL,
    last BLOB NOT NULL,
    cidr TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (version, prefixlen, hi, lo)
);
CREATE INDEX IF NOT EXISTS networks_range ON networks (version, first);
CREATE INDEX IF NOT EXISTS networks_name ON networks (name, id);
CREATE TABLE IF NOT EXISTS prefix_lengths (
    version INTEGER NOT NULL,
    prefixlen INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (version, prefixlen)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS networks_counted AFTER INSERT ON networks BEGIN
    INSERT INTO prefix_lengths (version, prefixlen, count)
    VALUES (new.version, new.prefixlen, 1)
    ON CONFLICT (version, prefixlen) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER IF NOT EXISTS networks_uncounted AFTER DELETE ON networks BEGIN
    UPDATE prefix_lengths SET count = count - 1
    WHERE version = old.version AND prefixlen = old.prefixlen;
    DELETE FROM prefix_lengths WHERE count <= 0;
END;
CREATE TRIGGER IF NOT EXISTS networks_recounted
AFTER UPDATE OF version, prefixlen ON networks BEGIN
    UPDATE prefix_lengths SET count = count - 1
    WHERE version = old.version AND prefixlen = old.prefixlen;
    DELETE FROM prefix_lengths WHERE count <= 0;
    INSERT INTO prefix_lengths (version, prefixlen, count)
    VALUES (new.version, new.prefixlen, 1)
    ON CONFLICT (version, prefixlen) DO UPDATE SET count = count + 1;
END;
CREATE TABLE IF NOT EXISTS revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_pair ON login_failures (name, address, at);
"""

SELECT_USER = "SELECT id, public_id, name, admin, password_changed_at FROM users"
SELECT_NETWORK = "SELECT id, cidr, name FROM networks"
USER_AND_REVOCATION = (
    "SELECT id, public_id, name, admin, password_changed_at,"
    " EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?) AS revoked"
    " FROM users WHERE public_id = ?"
)
INSERT_NETWORK = (
    "INSERT INTO networks (version, prefixlen, hi, lo, first, last, cidr, name)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# The most specific network containing the query, in one statement: walk the
# prefix lengths present, longest first, and probe the unique index for the
# query's address masked to each length. SQLite computes the masks on the two
# 64-bit words: -1 << n keeps the top 64 - n bits, a shift of 64 or more gives
# 0 and a negative shift keeps every bit.
LOOKUP = """
SELECT n.id, n.cidr, n.name
FROM prefix_lengths AS p
JOIN networks AS n
  ON n.version = p.version
 AND n.prefixlen = p.prefixlen
 AND n.hi = ? & (-1 << (64 - p.prefixlen))
 AND n.lo = ? & (-1 << (128 - p.prefixlen))
WHERE p.version = ? AND p.prefixlen <= ?
ORDER BY p.prefixlen DESC
LIMIT 1
"""
# Pages of the registry, by id, optionally filtered by name and/or range.
PAGE = " ORDER BY id LIMIT :limit"
IN_RANGE = (
    " AND version = :version AND first >= :first AND last <= :last"
    " AND prefixlen >= :prefixlen"
)
LIST_NETWORKS = {
    (False, False): SELECT_NETWORK + " WHERE id > :after" + PAGE,
    (True, False): SELECT_NETWORK + " WHERE name = :name AND id > :after" + PAGE,
    (False, True): SELECT_NETWORK + " WHERE id > :after" + IN_RANGE + PAGE,
    (True, True): SELECT_NETWORK
    + " WHERE name = :name AND id > :after"
    + IN_RANGE
    + PAGE,
}


class User(NamedTuple):
    """A registered user, without the password hash."""

    id: int
    public_id: str
    name: str
    admin: bool
    password_changed_at: int

    def to_dict(self) -> dict[str, object]:
        """Return the public view of the user."""
        return {"public_id": self.public_id, "name": self.name, "admin": self.admin}


class NetworkRecord(NamedTuple):
    """A registered network and its site name."""

    id: int
    cidr: str
    name: str

    def to_dict(self) -> dict[str, object]:
        """Return the public view of the network."""
        return {"id": self.id, "cidr": self.cidr, "name": self.name}


_MISSING = object()
# Read pages through a memory map of up to 1 GiB rather than a read() each.
MMAP_ON = "PRAGMA mmap_size = 1073741824"
MMAP_OFF = "PRAGMA mmap_size = 0"
CACHE_SIZE = 10_000


class _Cache:
    """Answers read from one connection while the database stays unchanged."""

    def __init__(self, stamp: tuple[int, int]) -> None:
        self.stamp = stamp
        self.owners: dict[tuple[str, str], tuple[User | None, bool]] = {}
        self.lookups: dict[networks.QueryKey, object] = {}


def _remember(cache: dict[Any, Any], key: object, value: object) -> None:
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value


class Store:
    """The database: one SQLite connection per thread, WAL, a busy timeout.

    Args:
        path: the database file, or ``":memory:"`` for a private in-memory
            database shared by the threads of this store.
        password_method: a Werkzeug hashing method; Werkzeug's default if None.
    """

    def __init__(self, path: str, *, password_method: str | None = None) -> None:
        self.path = path
        self._memory = path == ":memory:"
        self._target = (
            f"file:wsgi-app-{uuid.uuid4().hex}?mode=memory&cache=shared"
            if self._memory
            else path
        )
        self._method = password_method
        self._dummy: str | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        if not self._memory and not os.path.exists(path):
            _create_private(path)
        # NOTE: an in-memory database lives while one connection is open.
        self._keeper = self._connect() if self._memory else None

    def dummy_hash(self) -> str:
        """Return a hash of a random password, made once, for unknown names."""
        if self._dummy is None:
            self._dummy = self._hash(secrets.token_urlsafe(16))
        return self._dummy

    def _hash(self, password: str) -> str:
        if self._method is None:
            return generate_password_hash(password)
        return generate_password_hash(password, self._method)

    # -- connections -----------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._target,
            uri=self._memory,
            timeout=10.0,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=512,
        )
        conn.row_factory = sqlite3.Row
        if not self._memory:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(MMAP_ON)
        conn.execute("PRAGMA busy_timeout = 10000")
        with self._lock:
            self._connections.append(conn)
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Let reads in the block use this thread's cache, checked once here.

        The cache is emptied first if the database changed since it was
        filled: ``PRAGMA data_version`` moves when another connection (thread
        or process) commits, ``total_changes`` when this one writes. One
        request runs in one snapshot, so it sees every change committed
        before it began, at the cost of one PRAGMA.
        """
        conn = self.conn
        try:
            (version,) = conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            # A failing database fails the request's own queries, which
            # answer it properly; the cache stays out of the way.
            self._local.snapshot = None
            yield
            return
        stamp = (version, conn.total_changes)
        cache: _Cache | None = getattr(self._local, "cache", None)
        if cache is None or cache.stamp != stamp:
            cache = self._local.cache = _Cache(stamp)
        self._local.snapshot = cache
        try:
            yield
        finally:
            self._local.snapshot = None

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block as one write transaction: all of it or none of it."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def init_schema(self) -> None:
        """Create the tables and indexes; safe to run again."""
        self.conn.executescript(SCHEMA)

    def health(self) -> bool:
        """Return True when the database answers a query."""
        try:
            self.conn.execute("SELECT count(*) FROM users").fetchone()
        except sqlite3.Error:
            return False
        return True

    # -- users -----------------------------------------------------------

    def create_user(self, name: str, password: str, *, admin: bool = False) -> User:
        """Add a user with a fresh random public_id.

        Raises:
            Conflict: when the name is taken.
        """
        password_hash = self._hash(password)
        public_id = str(uuid.uuid4())
        try:
            with self.transaction() as conn:
                conn.execute(
                    "INSERT INTO users (public_id, name, password_hash, admin,"
                    " password_changed_at) VALUES (?, ?, ?, ?, ?)",
                    (public_id, name, password_hash, int(admin), int(time.time())),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"User {name!r} already exists") from None
        user = self.user_by_public_id(public_id)
        assert user is not None  # noqa: S101 - written just above
        return user

    def authenticate(self, name: str, password: str) -> User | None:
        """Return the user when the password matches, else None.

        An unknown name costs the same hash work as a wrong password.
        """
        row = self.conn.execute(
            "SELECT id, public_id, name, admin, password_changed_at, password_hash"
            " FROM users WHERE name = ?",
            (name,),
        ).fetchone()
        stored = row["password_hash"] if row else self.dummy_hash()
        matches = check_password_hash(stored, password)
        return _user(row) if row is not None and matches else None

    def check_password(self, user: User, password: str) -> bool:
        """Return True when ``password`` is the user's current password."""
        return self.authenticate(user.name, password) is not None

    def user_by_public_id(self, public_id: str) -> User | None:
        """Return the user with this public_id, or None."""
        row = self.conn.execute(
            SELECT_USER + " WHERE public_id = ?", (public_id,)
        ).fetchone()
        return _user(row) if row is not None else None

    def token_owner(self, public_id: str, jti: str) -> tuple[User | None, bool]:
        """Return the user with this public_id and whether ``jti`` is logged out.

        Inside ``snapshot()`` the answer may come from this thread's cache.
        """
        cache: _Cache | None = getattr(self._local, "snapshot", None)
        owner = cache.owners.get((public_id, jti)) if cache is not None else None
        if owner is None:
            row = self.conn.execute(USER_AND_REVOCATION, (jti, public_id)).fetchone()
            if row is None:
                owner = (None, self.is_revoked(jti))
            else:
                owner = (_user(row), bool(row[5]))
            if cache is not None:
                _remember(cache.owners, (public_id, jti), owner)
        return owner

    def user_by_name(self, name: str) -> User | None:
        """Return the user with this name, or None."""
        row = self.conn.execute(SELECT_USER + " WHERE name = ?", (name,)).fetchone()
        return _user(row) if row is not None else None

    def list_users(self) -> list[User]:
        """Return every user, oldest first."""
        rows = self.conn.execute(SELECT_USER + " ORDER BY id")
        return [_user(row) for row in rows]

    def update_user(
        self, public_id: str, *, password: str | None = None, admin: bool | None = None
    ) -> User:
        """Change a user's password and/or admin flag.

        A new password also moves ``password_changed_at`` forward, so tokens
        issued before it are refused.

        Raises:
            NotFound: for an unknown public_id.
            Conflict: when it would leave no admin.
        """
        password_hash = self._hash(password) if password is not None else None
        with self.transaction() as conn:
            user = self._existing_user(public_id)
            if admin is False and user.admin:
                self._keep_an_admin(conn)
            if admin is not None:
                conn.execute(
                    "UPDATE users SET admin = ? WHERE id = ?", (int(admin), user.id)
                )
            if password_hash is not None:
                # Tokens carry whole-second iat values: a token is valid only
                # when iat >= password_changed_at, so round the change upwards.
                changed_at = int(time.time()) + 1
                conn.execute(
                    "UPDATE users SET password_hash = ?, password_changed_at = ?"
                    " WHERE id = ?",
                    (password_hash, changed_at, user.id),
                )
        updated = self.user_by_public_id(public_id)
        assert updated is not None  # noqa: S101 - updated just above
        return updated

    def delete_user(self, public_id: str) -> None:
        """Remove a user.

        Raises:
            NotFound: for an unknown public_id.
            Conflict: when it is the last admin.
        """
        with self.transaction() as conn:
            user = self._existing_user(public_id)
            if user.admin:
                self._keep_an_admin(conn)
            conn.execute("DELETE FROM users WHERE id = ?", (user.id,))

    def _existing_user(self, public_id: str) -> User:
        # NOTE: inside transaction() this reads through the same connection.
        user = self.user_by_public_id(public_id)
        if user is None:
            raise NotFound("User not found")
        return user

    @staticmethod
    def _keep_an_admin(conn: sqlite3.Connection) -> None:
        (admins,) = conn.execute("SELECT count(*) FROM users WHERE admin").fetchone()
        if admins <= 1:
            raise Conflict("The last admin cannot be removed or demoted")

    # -- logged-out tokens -----------------------------------------------

    def revoke_token(self, jti: str, expires_at: int) -> None:
        """Refuse the token with this id from now on, until it expires."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)",
                (jti, expires_at),
            )
            conn.execute(
                "DELETE FROM revoked_tokens WHERE expires_at < ?",
                (int(time.time()) - 3600,),
            )

    def is_revoked(self, jti: str) -> bool:
        """Return True when the token with this id was logged out."""
        row = self.conn.execute(
            "SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)
        ).fetchone()
        return row is not None

    # -- failed logins ---------------------------------------------------

    def claim_login_attempt(
        self, name: str, address: str, now: float, window: float, limit: int
    ) -> float | None:
        """Count a password attempt for this pair, unless it is over the limit.

        The attempt is counted before the password is checked, in the same
        transaction as the count, so concurrent attempts cannot slip past
        the limit; a success clears the count again.

        Returns:
            None when the attempt may go ahead, else when it may be retried.
        """
        with self.transaction() as conn:
            conn.execute("DELETE FROM login_failures WHERE at < ?", (now - window,))
            times = [
                row[0]
                for row in conn.execute(
                    "SELECT at FROM login_failures WHERE name = ? AND address = ?"
                    " ORDER BY at",
                    (name, address),
                )
            ]
            if len(times) >= limit:
                retry_at: float = times[len(times) - limit] + window
                return retry_at
            conn.execute(
                "INSERT INTO login_failures (name, address, at) VALUES (?, ?, ?)",
                (name, address, now),
            )
        return None

    def clear_login_failures(self, name: str, address: str) -> None:
        """Forget the failed logins of this pair, after a success."""
        with self.transaction() as conn:
            conn.execute(
                "DELETE FROM login_failures WHERE name = ? AND address = ?",
                (name, address),
            )

    # -- networks --------------------------------------------------------

    def add_network(self, network: Network, name: str) -> NetworkRecord:
        """Register a network under a site name.

        Raises:
            Conflict: when the network is already registered.
        """
        try:
            with self.transaction() as conn:
                cursor = conn.execute(
                    INSERT_NETWORK, (*networks.columns(network), name)
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"Network {network} is already registered") from None
        assert cursor.lastrowid is not None  # noqa: S101 - set by INSERT
        return NetworkRecord(cursor.lastrowid, str(network), name)

    def get_network(self, network_id: int) -> NetworkRecord:
        """Return the network with this id.

        Raises:
            NotFound: for an unknown id.
        """
        row = self.conn.execute(
            SELECT_NETWORK + " WHERE id = ?", (network_id,)
        ).fetchone()
        if row is None:
            raise NotFound("Network not found")
        return NetworkRecord(*row)

    def update_network(
        self, network_id: int, *, network: Network | None, name: str | None
    ) -> NetworkRecord:
        """Change a network's CIDR and/or name.

        Raises:
            NotFound: for an unknown id.
            Conflict: when the new CIDR is registered already.
        """
        with self.transaction() as conn:
            current = conn.execute(
                SELECT_NETWORK + " WHERE id = ?", (network_id,)
            ).fetchone()
            if current is None:
                raise NotFound("Network not found")
            if name is not None:
                conn.execute(
                    "UPDATE networks SET name = ? WHERE id = ?", (name, network_id)
                )
            if network is not None:
                try:
                    conn.execute(
                        "UPDATE networks SET version = ?, prefixlen = ?, hi = ?,"
                        " lo = ?, first = ?, last = ?, cidr = ? WHERE id = ?",
                        (*networks.columns(network), network_id),
                    )
                except sqlite3.IntegrityError:
                    raise Conflict(f"Network {network} is already registered") from None
        return self.get_network(network_id)

    def delete_network(self, network_id: int) -> None:
        """Remove a network.

        Raises:
            NotFound: for an unknown id.
        """
        with self.transaction() as conn:
            cursor = conn.execute("DELETE FROM networks WHERE id = ?", (network_id,))
            if cursor.rowcount == 0:
                raise NotFound("Network not found")

    def lookup(self, query: Network) -> NetworkRecord | None:
        """Return the most specific registered network containing ``query``.

        One statement, at most one index probe per prefix length present in
        the registry: never a scan of the table.
        """
        hi, lo = networks.words(query)
        return self.lookup_key((query.version, query.prefixlen, hi, lo))

    def lookup_key(self, key: networks.QueryKey) -> NetworkRecord | None:
        """Look up a query given as (version, prefix length, hi, lo).

        Inside ``snapshot()`` the answer may come from this thread's cache.
        """
        cache: _Cache | None = getattr(self._local, "snapshot", None)
        found = cache.lookups.get(key, _MISSING) if cache is not None else _MISSING
        if found is _MISSING:
            version, prefixlen, hi, lo = key
            row = self.conn.execute(LOOKUP, (hi, lo, version, prefixlen)).fetchone()
            found = NetworkRecord(*row) if row is not None else None
            if cache is not None:
                _remember(cache.lookups, key, found)
        return found  # type: ignore[return-value]

    def list_networks(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        name: str | None = None,
        within: Network | None = None,
    ) -> list[NetworkRecord]:
        """Return up to ``limit`` networks with an id above ``after``, by id."""
        params: dict[str, object] = {"after": after, "limit": limit, "name": name}
        if within is not None:
            version, prefixlen, _, _, first, last, _ = networks.columns(within)
            params.update(version=version, prefixlen=prefixlen, first=first, last=last)
        sql = LIST_NETWORKS[name is not None, within is not None]
        rows = self.conn.execute(sql, params)
        return [NetworkRecord(*row) for row in rows]

    def import_networks(
        self,
        rows: Iterable[tuple[int, networks.Columns, str]],
        *,
        replace: bool = False,
    ) -> int:
        """Register every row in one transaction, or none of them.

        Args:
            rows: ``(line, columns, name)`` triples, consumed as they come.
            replace: drop the whole registry first, in the same transaction.

        Returns:
            The number of networks registered.

        Raises:
            networks.ImportFailed: for the first bad or repeated row.
        """
        # NOTE: pages read through the memory map count toward the process's
        # resident memory; a bulk write gains nothing from it, so stream
        # through the ordinary page cache instead while importing.
        self.conn.execute(MMAP_OFF)
        try:
            return self._import(rows, replace)
        finally:
            self.conn.execute(MMAP_ON)

    def _import(
        self, rows: Iterable[tuple[int, networks.Columns, str]], replace: bool
    ) -> int:
        count = 0
        with self.transaction() as conn:
            if replace:
                conn.execute("DELETE FROM networks")
            (before,) = conn.execute(
                "SELECT coalesce(max(id), 0) FROM networks"
            ).fetchone()
            for line, stored, name in rows:
                try:
                    conn.execute(INSERT_NETWORK, (*stored, name))
                except sqlite3.IntegrityError:
                    raise networks.ImportFailed(
                        line, self._repeat_reason(conn, stored, before)
                    ) from None
                count += 1
        return count

    @staticmethod
    def _repeat_reason(
        conn: sqlite3.Connection, stored: networks.Columns, before: int
    ) -> str:
        (existing,) = conn.execute(
            "SELECT id FROM networks WHERE version = ? AND prefixlen = ? AND hi = ?"
            " AND lo = ?",
            stored[:4],
        ).fetchone()
        where = "already registered" if existing <= before else "repeated in the file"
        return f"{stored[-1]} is {where}"


def _create_private(path: str) -> None:
    """Create an empty database file readable by its owner only.

    SQLite gives its -wal and -shm files the same mode.
    """
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _user(row: sqlite3.Row) -> User:
    # NOTE: every user query selects the User columns first, in this order.
    return User(row[0], row[1], row[2], bool(row[3]), row[4])


def encode_cursor(last_id: int) -> str:
    """Return an opaque page cursor for the rows after ``last_id``."""
    return base64.urlsafe_b64encode(f"n{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """Return the id a cursor stands for, or None when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    digits = text[1:]
    if not text.startswith("n") or not (digits.isascii() and digits.isdigit()):
        return None
    value = int(digits)
    return value if value < 2**63 else None
