"""Load the real waitress server side by side with an empty WSGI app.

Run by hand, not in CI (needs Debian's ``wrk``: ``apt-get install wrk``):

    python bench/http.py            # 3 alternating rounds of 10 s per case
    python bench/http.py --quick    # 2 rounds of 3 s: under a minute

Both servers are waitress, one process, the same thread count, on loopback.
The empty app returns a fixed JSON body: it is the ceiling. Ours runs as
``wsgi-app serve`` on a temporary database with users and 100 000 networks.
"""

from __future__ import annotations

import sys

# NOTE: run as a script, this folder comes first on sys.path, and this file's
# name would hide the standard library's http package from Werkzeug.
if sys.path and sys.path[0] == __file__.rsplit("/", 1)[0]:
    del sys.path[0]

import argparse
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "bench-secret-key-" + "x" * 32
LOGIN_CLIENTS = 2  # the server's default login_slots
BODY = b'{"message": "TOKYO", "network": "3.0.0.0/8"}'


def empty_app(environ: dict[str, object], start_response: object) -> Iterable[bytes]:
    """Answer every request with the same small JSON body."""
    start_response(  # type: ignore[operator]
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def seed(database: Path, networks: int) -> tuple[str, str]:
    """Create users and networks; return an admin token and alice's password."""
    from wsgi_app import create_app

    app = create_app(database=str(database), secret_key=KEY)
    admin = app.store.create_user("admin", "admin-password-123", admin=True)
    app.store.create_user("alice", "alice-password-123")
    table = database.with_suffix(".csv")
    rng = random.Random(7)
    seen = set()
    with table.open("w") as file:
        file.write("cidr,name\n3.0.0.0/8,TOKYO\n")
        while len(seen) < networks - 1:
            value = rng.getrandbits(24)
            if value >> 16 != 3 and value not in seen:
                seen.add(value)
                file.write(f"{value >> 16}.{(value >> 8) & 255}.{value & 255}.0/24,S\n")
    from wsgi_app.networks import read_table

    with table.open("rb") as stream:
        app.store.import_networks(read_table(iter(lambda: stream.read(1 << 20), b"")))
    token = app.tokens.issue(admin, ttl=24 * 3600)
    app.store.close()
    return token, "alice-password-123"


def wrk_args(
    url: str, seconds: int, connections: int, headers: dict[str, str]
) -> list[str]:
    threads = min(2, connections)
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    return [*args, url]


def wrk(
    url: str, seconds: int, connections: int, headers: dict[str, str]
) -> dict[str, float]:
    args = wrk_args(url, seconds, connections, headers)
    return parse(
        subprocess.run(args, capture_output=True, text=True, check=True).stdout
    )


def parse(out: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50": to_ms(latency["50"]),
        "p99": to_ms(latency["99"]),
        "non2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
    }


def during_logins(
    lookup: tuple[str, dict[str, str]],
    login: tuple[str, dict[str, str]],
    seconds: int,
    connections: int,
) -> dict[str, float]:
    """Time lookups while clients log in as fast as the hashing slots allow."""
    logins = subprocess.Popen(
        wrk_args(login[0], seconds + 1, LOGIN_CLIENTS, login[1]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        return wrk(lookup[0], seconds, connections, lookup[1])
    finally:
        logins.wait()


def to_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--networks", type=int, default=100_000)
    parser.add_argument(
        "--cpus",
        default="first",
        help="CPUs for both servers: first (serve's default), all, or a list",
    )
    args = parser.parse_args()
    rounds, seconds = (2, 3) if args.quick else (3, 10)
    print(
        f"{platform.node()}: {platform.machine()}, {os.cpu_count()} CPUs,"
        f" python {platform.python_version()}; waitress threads {args.threads},"
        f" {args.connections} connections, {rounds} rounds x {seconds} s,"
        f" cpus {args.cpus}"
    )
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "bench.sqlite3"
        token, password = seed(database, args.networks)
        ours, empty = free_port(), free_port()
        env = {**os.environ, "WSGI_APP_SECRET_KEY": KEY, "PYTHONPATH": str(ROOT)}
        cpus = str(min(os.sched_getaffinity(0))) if args.cpus == "first" else args.cpus
        pin = [] if cpus == "all" else ["taskset", "-c", cpus]
        servers = [
            subprocess.Popen(
                [
                    *pin,
                    sys.executable,
                    "-m",
                    "wsgi_app",
                    "serve",
                    "--port",
                    str(ours),
                    "--threads",
                    str(args.threads),
                    "--database",
                    str(database),
                    "--cpus",
                    cpus,
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [
                    *pin,
                    sys.executable,
                    "-m",
                    "waitress",
                    f"--port={empty}",
                    f"--threads={args.threads}",
                    "bench.http:empty_app",
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        try:
            wait_for(ours)
            wait_for(empty)
            import base64

            basic = base64.b64encode(f"alice:{password}".encode()).decode()
            cases = {
                "empty app": (f"http://127.0.0.1:{empty}/", {}),
                "lookup (token)": (
                    f"http://127.0.0.1:{ours}/net/?specific_net=3.3.3.0/8",
                    {"x-access-token": token},
                ),
                "401 (no token)": (
                    f"http://127.0.0.1:{ours}/net/?specific_net=3.3.3.3",
                    {},
                ),
                "login": (
                    f"http://127.0.0.1:{ours}/login",
                    {"Authorization": f"Basic {basic}"},
                ),
            }
            results: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
            results["lookup + 2 logins"] = []
            for _ in range(rounds):
                for name, (url, headers) in cases.items():
                    clients = LOGIN_CLIENTS if name == "login" else args.connections
                    results[name].append(wrk(url, seconds, clients, headers))
                results["lookup + 2 logins"].append(
                    during_logins(
                        cases["lookup (token)"],
                        cases["login"],
                        seconds,
                        args.connections,
                    )
                )
        finally:
            for server in servers:
                server.terminate()
                server.wait()
    ceiling = statistics.median(r["rps"] for r in results["empty app"])
    ceiling_p99 = statistics.median(r["p99"] for r in results["empty app"])
    print(
        f"{'case':16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'ratio':>6} {'p99/empty':>9}"
    )
    for name, runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        p50 = statistics.median(r["p50"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        bad = sum(r["non2xx"] for r in runs)
        note = f"  ({bad:.0f} non-2xx)" if bad and name != "401 (no token)" else ""
        print(
            f"{name:16} {rps:9.0f} {p50:8.2f} {p99:8.2f} {rps / ceiling:6.2f}"
            f" {p99 / ceiling_p99:9.2f}{note}"
        )
    print("goal: lookup ratio >= 0.50 and p99/empty <= 3")


if __name__ == "__main__":
    main()
