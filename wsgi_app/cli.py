"""The ``wsgi-app`` command line."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import BinaryIO, NoReturn, TextIO, TypeVar

import jwt

from . import networks
from .app import App, create_app
from .config import ENVIRONMENT, ConfigError, Settings
from .errors import ApiError
from .handlers import check_password_length, check_user_name
from .tokens import TokenRefused

logger = logging.getLogger(__name__)
Row = TypeVar("Row")

MAX_TTL = 366 * 24 * 3600
DEMO_USERS = (
    ("admin", "demo-admin-password", True),
    ("alice", "demo-alice-password", False),
)
DEMO_NETWORKS = (
    ("3.0.0.0/8", "TOKYO"),
    ("10.0.0.0/8", "HEADQUARTERS"),
    ("10.20.0.0/16", "LONDON"),
    ("10.20.30.0/24", "LONDON-LAB"),
    ("192.168.0.0/16", "BRANCH-OFFICES"),
    ("2001:db8::/32", "PARIS"),
    ("2001:db8:42::/48", "PARIS-LAB"),
)


class CommandError(Exception):
    """A command cannot go on; its message is the one line the user sees."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status."""
    args = _parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except (CommandError, ConfigError, TokenRefused) as exc:
        return _fail(str(exc))
    except ApiError as exc:
        return _fail(exc.message)
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    except sqlite3.Error as exc:
        return _fail(f"database {args.database}: {exc}")
    except UnicodeError:
        return _fail("arguments and input must be UTF-8 text")
    except KeyboardInterrupt:
        return 130
    return result


def _fail(message: str) -> int:
    print(f"wsgi-app: error: {message}", file=sys.stderr)
    return 1


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--database",
        default=os.environ.get(ENVIRONMENT["database"], Settings.database),
        help="database file (default: $WSGI_APP_DATABASE or %(default)s)",
    )
    parser = _Parser(prog="wsgi-app", description="A JWT-protected API of IP networks.")
    commands = parser.add_subparsers(
        required=True, metavar="COMMAND", parser_class=_Parser
    )

    def command(
        name: str, run: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(run=run)
        return sub

    command("init-db", _init_db, "create the schema; safe to run twice")
    sub = command("create-user", _create_user, "add a user")
    sub.add_argument("name")
    sub.add_argument("--admin", action="store_true", help="make the user an admin")
    sub.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )
    sub = command("add-net", _add_net, "register a network under a site name")
    sub.add_argument("cidr")
    sub.add_argument("name")
    sub = command("import-nets", _import_nets, "register networks from a CSV file")
    sub.add_argument("file", help="CSV with a cidr,name header; - for stdin")
    sub.add_argument(
        "--replace", action="store_true", help="replace the whole registry"
    )
    sub = command("serve", _serve, "serve the API with waitress")
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--port", type=_port, default=5000, help="0 picks a free port")
    sub.add_argument("--threads", type=_threads, default=4)
    _server_options(sub)
    text = "serve a throwaway demo database on 127.0.0.1"
    sub = commands.add_parser("demo", help=text, description=text)
    sub.set_defaults(run=_demo)
    sub.add_argument("--port", type=_port, default=5000, help="0 picks a free port")
    _server_options(sub)
    _token_commands(commands, common)
    return parser


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}")
        return value

    return convert


_port = _bounded(0, 65535)
_threads = _bounded(1, 1024)


def _server_options(sub: argparse.ArgumentParser) -> None:
    _cpus_option(sub)
    sub.add_argument(
        "--log-format",
        choices=("common", "json"),
        default="common",
        help="access lines in the common log format (default) or as JSON",
    )
    sub.add_argument("--quiet", action="store_true", help="write no access lines")


def _cpus_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--cpus",
        default="first",
        help="CPUs to run on: 'first' (default: one CPU, which serves Python's"
        " threads fastest), 'all', or a list such as 0,2-3",
    )


def _token_commands(
    commands: argparse._SubParsersAction[_Parser],
    common: _Parser,
) -> None:
    token = commands.add_parser("token", help="decode, verify or issue tokens")
    actions = token.add_subparsers(
        required=True, metavar="ACTION", parser_class=_Parser
    )
    for name, run, text in (
        ("decode", _token_decode, "print header and claims, without verifying"),
        ("verify", _token_verify, "apply the server's acceptance rules"),
    ):
        sub = actions.add_parser(name, parents=[common], help=text, description=text)
        sub.add_argument("token", nargs="?", help="the token; read from stdin if -")
        sub.set_defaults(run=run)
    sub = actions.add_parser(
        "issue", parents=[common], help="mint a token for an existing user"
    )
    sub.add_argument("name")
    sub.add_argument("--ttl", type=int, help="lifetime in seconds")
    sub.set_defaults(run=_token_issue)


def _app(args: argparse.Namespace) -> App:
    return create_app(database=args.database)


def _existing_app(args: argparse.Namespace) -> App:
    """Open the database, refusing to create one where none is expected."""
    if args.database != ":memory:" and not os.path.exists(args.database):
        raise CommandError(f"no database at {args.database} (see --database)")
    return _app(args)


# -- commands ------------------------------------------------------------


def _init_db(args: argparse.Namespace) -> int:
    _app(args).store.close()
    print(f"database ready: {args.database}")
    return 0


def _create_user(args: argparse.Namespace) -> int:
    name = check_user_name(args.name)
    password = _read_password(args.password_stdin)
    user = _app(args).store.create_user(name, password, admin=args.admin)
    role = "admin" if user.admin else "user"
    print(f"created {role} {user.name} with public_id {user.public_id}")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("no password given on standard input")
    elif not sys.stdin.isatty():
        raise CommandError("no terminal to ask for the password; use --password-stdin")
    else:
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Password again: ")
        except EOFError:
            raise CommandError("no password given (try --password-stdin)") from None
        if again != password:
            raise CommandError("the two passwords differ")
    return check_password_length(password)


def _add_net(args: argparse.Namespace) -> int:
    store = _app(args).store
    record = store.add_network(
        networks.parse_cidr(args.cidr), networks.parse_name(args.name)
    )
    print(f"registered {record.cidr} as {record.name} (id {record.id})")
    return 0


def _import_nets(args: argparse.Namespace) -> int:
    store = _app(args).store
    started = time.monotonic()
    stream: BinaryIO = sys.stdin.buffer
    if args.file != "-":
        stream = open(args.file, "rb")  # noqa: SIM115 - closed by the block below
    with stream:
        progress = _Progress(sys.stderr, started)
        rows = progress.count(networks.read_table(_file_chunks(stream)))
        count = store.import_networks(rows, replace=args.replace)
    progress.finish()
    seconds = time.monotonic() - started
    rate = count / seconds if seconds else 0.0
    verb = "replaced the registry with" if args.replace else "imported"
    noun = "network" if count == 1 else "networks"
    print(f"{verb} {count:,} {noun} in {seconds:.1f} s ({rate:,.0f} rows/s)")
    return 0


def _file_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(1024 * 1024):
        yield chunk


class _Progress:
    """Show rows done and the rate on a terminal, at most a few times a second."""

    def __init__(self, out: TextIO, started: float) -> None:
        self.out = out
        self.started = started
        self.shown = 0.0
        self.enabled = out.isatty()

    def count(self, rows: Iterator[Row]) -> Iterator[Row]:
        for done, row in enumerate(rows, 1):
            if self.enabled and done % 10_000 == 0:
                now = time.monotonic()
                if now - self.shown > 0.25:
                    self.shown = now
                    rate = done / (now - self.started)
                    self.out.write(f"\r{done:,} rows, {rate:,.0f} rows/s")
                    self.out.flush()
            yield row

    def finish(self) -> None:
        if self.enabled and self.shown:
            self.out.write("\n")


def _serve(args: argparse.Namespace) -> int:
    app = _app(args)
    _pin(args.cpus)
    _listen(app, args, args.host, args.threads, lambda base: None)
    return 0


def _pin(cpus: str) -> None:
    """Keep this process on the given CPUs.

    One CPU is the default: waitress's threads share one interpreter lock,
    and handing it between CPUs costs more than a second CPU brings.
    """
    if cpus == "all" or not hasattr(os, "sched_setaffinity"):
        return
    allowed = sorted(os.sched_getaffinity(0))
    spans = [(allowed[0], allowed[0])] if cpus == "first" else _cpu_spans(cpus)
    # NOTE: compared span by span, so a huge range costs nothing to refuse.
    if not all(first in allowed and last in allowed for first, last in spans):
        usable = ",".join(str(cpu) for cpu in allowed)
        raise CommandError(f"--cpus {cpus}: this process may use CPUs {usable}")
    chosen = [cpu for cpu in allowed if any(a <= cpu <= b for a, b in spans)]
    os.sched_setaffinity(0, chosen)


def _cpu_spans(text: str) -> list[tuple[int, int]]:
    """Parse ``0,2-3`` into [(0, 0), (2, 3)]."""
    spans = []
    try:
        for part in text.split(","):
            first, _, last = part.partition("-")
            spans.append((int(first), int(last or first)))
    except ValueError:
        raise CommandError(
            f"--cpus takes first, all or a list like 0,2-3; got {text!r}"
        ) from None
    if any(first > last for first, last in spans):
        raise CommandError(f"--cpus {text}: a range must run upwards")
    return spans


def _listen(
    app: App,
    args: argparse.Namespace,
    host: str,
    threads: int,
    banner: Callable[[str], None],
) -> None:
    import waitress

    _configure_logging()
    app.access_log.write = sys.stderr.write
    app.access_log.form = args.log_format
    if args.quiet:
        app.wsgi = app.access_log.app
    try:
        server = waitress.create_server(
            app,
            host=host,
            port=args.port,
            threads=threads,
            max_request_body_size=app.settings.max_import_body,
        )
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CommandError(
            f"cannot listen on {host}:{args.port}: {reason}"
            " (choose another --host or --port)"
        ) from None
    signal.signal(signal.SIGTERM, _stop)
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{server.effective_port}"
    banner(base)
    print(f"wsgi-app: serving {base}/ (database {app.settings.database})")
    print("wsgi-app: press Ctrl+C to stop", flush=True)
    try:
        server.run()
    finally:
        server.close()


def _stop(signum: int, frame: object) -> None:
    """Stop serving on SIGTERM as on Ctrl+C, so clean-up runs."""
    raise KeyboardInterrupt


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("wsgi_app", "waitress"):
        log = logging.getLogger(name)
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _demo(args: argparse.Namespace) -> int:
    folder = tempfile.mkdtemp(prefix="wsgi-app-demo-")
    database = os.path.join(folder, "demo.sqlite3")
    try:
        app = create_app(database=database)
        _pin(args.cpus)
        for name, password, admin in DEMO_USERS:
            app.store.create_user(name, password, admin=admin)
        for cidr, site in DEMO_NETWORKS:
            app.store.add_network(networks.parse_cidr(cidr), site)
        _listen(app, args, "127.0.0.1", 4, _demo_banner)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _demo_banner(base: str) -> None:
    print("wsgi-app demo: a throwaway database, deleted when you stop")
    for name, password, admin in DEMO_USERS:
        print(f"  {'admin' if admin else 'user'} {name}, password {password}")
    print("Log in, keep the token, and look up 3.3.3.0/8 (it answers TOKYO):")
    print(f"  curl -s -u admin:demo-admin-password {base}/login")
    print(
        f"  TOKEN=$(curl -s -u admin:demo-admin-password {base}/login"
        " | python3 -c 'import json, sys; print(json.load(sys.stdin)[\"token\"])')"
    )
    print(
        f"  curl -s -H \"x-access-token: $TOKEN\" '{base}/net/?specific_net=3.3.3.0/8'"
    )


# -- token tools ---------------------------------------------------------


def _token_argument(args: argparse.Namespace) -> str:
    from_stdin = args.token in (None, "-")
    token = sys.stdin.readline() if from_stdin else args.token
    token = token.strip()
    if not token:
        raise CommandError("no token given")
    return str(token)


def _token_decode(args: argparse.Namespace) -> int:
    token = _token_argument(args)
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise CommandError(f"not a decodable token: {exc}") from None
    print("signature NOT verified: this only shows what the token says")
    print("header:")
    print(json.dumps(header, indent=2))
    print("claims:")
    print(json.dumps(claims, indent=2))
    now = time.time()
    for name in ("iat", "exp"):
        value = claims.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            print(f"{name}: {_describe_time(name, value, now)}")
    return 0


def _describe_time(name: str, seconds: int, now: float) -> str:
    try:
        when = datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, ValueError, OSError):
        return f"{seconds} (out of range)"
    delta = int(seconds - now)
    if name == "exp":
        relation = f"expires in {delta} s" if delta > 0 else f"expired {-delta} s ago"
    else:
        relation = f"in {delta} s, in the future" if delta > 0 else f"{-delta} s ago"
    return f"{when:%Y-%m-%d %H:%M:%S} UTC ({relation})"


def _token_verify(args: argparse.Namespace) -> int:
    token = _token_argument(args)
    try:
        verified = _existing_app(args).tokens.verify(token)
    except TokenRefused as exc:
        print(f"invalid: {exc.reason}")
        return 1
    user = verified.user
    print(f"valid: {user.name} (public_id {user.public_id})")
    return 0


def _token_issue(args: argparse.Namespace) -> int:
    app = _existing_app(args)
    user = app.store.user_by_name(args.name)
    if user is None:
        raise CommandError(f"no user named {args.name!r}")
    if args.ttl is not None and not 1 <= args.ttl <= MAX_TTL:
        raise CommandError(f"--ttl must be from 1 to {MAX_TTL} seconds")
    print(app.tokens.issue(user, ttl=args.ttl))
    return 0
