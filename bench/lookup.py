"""Measure network lookups and bulk import at several registry sizes.

Run by hand, not in CI:

    python bench/lookup.py                # 1e3, 1e5 and 1e6 networks
    python bench/lookup.py --size 4e6     # one size only

For each size it writes a CSV of random networks (prefix lengths spread like
a routing table, about one tenth IPv6), imports it with ``wsgi-app
import-nets`` in a child process (rate, peak memory), then times lookups
through ``Store.lookup`` and, on the same database, one indexed point SELECT.
"""

from __future__ import annotations

import sys

# NOTE: run as a script, this folder comes first on sys.path, where http.py
# would hide the standard library's http package.
if sys.path and sys.path[0] == __file__.rsplit("/", 1)[0]:
    del sys.path[0]

import argparse
import ipaddress
import os
import random
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsgi_app.networks import parse_query
from wsgi_app.store import Store

# (prefix length, weight): roughly the shape of a public routing table.
V4_LENGTHS = [(8, 1), (12, 1), (16, 4), (18, 3), (20, 6), (22, 12), (23, 10), (24, 63)]
V6_LENGTHS = [(29, 3), (32, 20), (36, 7), (40, 10), (44, 15), (48, 45)]
LOOKUPS = 20_000


def random_networks(count: int, rng: random.Random) -> set[str]:
    """Return ``count`` distinct random networks as CIDR strings."""
    v4_lengths, v4_weights = zip(*V4_LENGTHS, strict=True)
    v6_lengths, v6_weights = zip(*V6_LENGTHS, strict=True)
    found: set[str] = set()
    while len(found) < count:
        if rng.random() < 0.1:
            length = rng.choices(v6_lengths, v6_weights)[0]
            address = (0x2000 << 112) | rng.getrandbits(125 - 16 + 16)
            network = ipaddress.IPv6Network(
                (address >> (128 - length) << (128 - length), length)
            )
        else:
            length = rng.choices(v4_lengths, v4_weights)[0]
            address = rng.getrandbits(32)
            network = ipaddress.IPv4Network(
                (address >> (32 - length) << (32 - length), length)
            )
        found.add(str(network))
    return found


def write_table(path: Path, count: int, rng: random.Random) -> None:
    with path.open("w") as file:
        file.write("cidr,name\n")
        for index, cidr in enumerate(random_networks(count, rng)):
            file.write(f"{cidr},SITE-{index % 5000}\n")


def import_table(database: Path, table: Path) -> tuple[float, float]:
    """Import through the command line; return (seconds, peak MiB of the child).

    The peak is the child's own high-water mark (VmHWM, which starts afresh
    at exec), read while it runs: getrusage would also count the pages the
    child shared with this process between fork and exec.
    """
    env = {**os.environ, "WSGI_APP_SECRET_KEY": "b" * 40}
    command = [sys.executable, "-m", "wsgi_app", "import-nets", str(table)]
    started = time.perf_counter()
    child = subprocess.Popen(
        [*command, "--database", str(database)], env=env, stdout=subprocess.DEVNULL
    )
    peak_kib = 0
    status = Path(f"/proc/{child.pid}/status")
    while child.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kib = max(peak_kib, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"import failed with status {child.returncode}")
    return seconds, peak_kib / 1024


def queries(count: int, rng: random.Random, registered: list[str]) -> list[str]:
    """Half addresses inside registered networks, half random addresses.

    The same mix at every size keeps the share of hits comparable.
    """
    out = []
    for _ in range(count):
        if rng.random() < 0.5:
            network = ipaddress.ip_network(rng.choice(registered))
            offset = rng.randrange(network.num_addresses)
            out.append(str(network.network_address + offset))
        elif rng.random() < 0.1:
            out.append(
                str(ipaddress.IPv6Address((0x2000 << 112) | rng.getrandbits(109 + 16)))
            )
        else:
            out.append(str(ipaddress.IPv4Address(rng.getrandbits(32))))
    return out


def time_calls(calls: list[object], run: object) -> list[float]:
    timings = []
    clock = time.perf_counter_ns
    for argument in calls:
        started = clock()
        run(argument)  # type: ignore[operator]
        timings.append((clock() - started) / 1000)
    return timings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(size: int, folder: Path, rng: random.Random) -> dict[str, float]:
    table = folder / f"nets-{size}.csv"
    database = folder / f"nets-{size}.sqlite3"
    write_table(table, size, rng)
    seconds, peak = import_table(database, table)
    store = Store(str(database))
    sample = [
        row[0]
        for row in store.conn.execute(
            "SELECT cidr FROM networks ORDER BY random() LIMIT 1000"
        )
    ]
    parsed = [parse_query(text) for text in queries(LOOKUPS, rng, sample)]
    hits = sum(store.lookup(query) is not None for query in parsed[:2000])
    lookup = time_calls(parsed, store.lookup)
    ids = [rng.randint(1, size) for _ in range(LOOKUPS)]
    point_sql = "SELECT id, cidr, name FROM networks WHERE id = ?"
    point = time_calls(ids, lambda i: store.conn.execute(point_sql, (i,)).fetchone())
    store.close()
    result = {
        "size": size,
        "median": statistics.median(lookup),
        "p99": percentile(lookup, 0.99),
        "point": statistics.median(point),
        "hit_share": hits / 2000,
        "rate": size / seconds,
        "peak_mib": peak,
        "db_mib": database.stat().st_size / 2**20,
    }
    table.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, action="append", help="registry size")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in (args.size or [1e3, 1e5, 1e6])]
    rng = random.Random(args.seed)
    print(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version},"
        f" {os.cpu_count()} CPUs, {LOOKUPS} lookups per size"
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            rows.append(measure(size, Path(folder), rng))
            row = rows[-1]
            print(
                f"{size:>9,} networks: lookup median {row['median']:6.1f} us"
                f"  p99 {row['p99']:6.1f} us  (hits {row['hit_share']:.0%})"
                f" | point SELECT {row['point']:5.1f} us"
                f" | lookup/point {row['median'] / row['point']:4.2f}"
                f" | import {row['rate']:,.0f} rows/s, peak {row['peak_mib']:.0f} MiB"
                f" | db {row['db_mib']:.0f} MiB",
                flush=True,
            )
    if len(rows) > 1:
        print(
            f"median ratio {rows[-1]['size']:,} : {rows[0]['size']:,} ="
            f" {rows[-1]['median'] / rows[0]['median']:.2f} (goal <= 1.5)"
        )
    worst = max(row["median"] / row["point"] for row in rows)
    print(f"worst lookup : point SELECT = {worst:.2f} (goal <= 3)")


if __name__ == "__main__":
    main()
