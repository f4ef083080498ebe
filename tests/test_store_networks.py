"""The network registry in the store: lookup, pages, and all-or-nothing imports."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsgi_app.errors import Conflict
from wsgi_app.networks import (
    ImportFailed,
    Network,
    parse_cidr,
    parse_query,
    read_table,
)
from wsgi_app.store import Store, decode_cursor, encode_cursor

from conftest import FAST_HASH, NESTED

Rows = list[tuple[int, str, str]]


def new_store() -> Store:
    store = Store(":memory:", password_method=FAST_HASH)
    store.init_schema()
    return store


@pytest.fixture
def store() -> Iterator[Store]:
    db = new_store()
    yield db
    db.close()


def snapshot(store: Store) -> tuple[Rows, list[tuple[int, int, int]]]:
    """Every registered row, and the prefix-length counts lookups rely on."""
    rows = store.conn.execute("SELECT id, cidr, name FROM networks ORDER BY id")
    counts = store.conn.execute(
        "SELECT version, prefixlen, count FROM prefix_lengths"
        " ORDER BY version, prefixlen"
    )
    return [tuple(row) for row in rows], [tuple(row) for row in counts]


def registry(store: Store) -> list[tuple[str, str]]:
    rows = store.conn.execute("SELECT cidr, name FROM networks ORDER BY id")
    return [(cidr, name) for cidr, name in rows]


def name_at(store: Store, query: str) -> str | None:
    record = store.lookup(parse_query(query))
    return None if record is None else record.name


def fill(store: Store, table: list[tuple[str, str]]) -> dict[str, int]:
    return {cidr: store.add_network(parse_cidr(cidr), name).id for cidr, name in table}


# -- lookup against a brute-force reference -------------------------------


def reference(registered: dict[Network, str], query: Network) -> tuple[str, str] | None:
    """The longest registered prefix of the same version containing ``query``."""
    matches = [
        net
        for net in registered
        if net.version == query.version and query.subnet_of(net)  # type: ignore[arg-type]
    ]
    if not matches:
        return None
    best = max(matches, key=lambda net: net.prefixlen)
    return str(best), registered[best]


def found(store: Store, query: Network) -> tuple[str, str] | None:
    record = store.lookup(query)
    return None if record is None else (record.cidr, record.name)


WIDTH = {4: 32, 6: 128}
MAPPED = 0xFFFF << 32  # ::ffff:0:0/96 holds the IPv4-mapped IPv6 addresses
# Prefix lengths where masks change shape: the ends, and around 64-bit words.
EDGES = {4: [0, 1, 2, 31, 32], 6: [0, 1, 2, 63, 64, 65, 66, 96, 127, 128]}
CATCH_ALLS = [
    parse_query("0.0.0.0/0"),
    parse_query("::/0"),
    parse_query("::ffff:0:0/96"),
]


def make_network(version: int, address: int, prefixlen: int) -> Network:
    cls = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    return cls((address, prefixlen), strict=False)


@st.composite
def anchors(draw: st.DrawFn) -> dict[int, list[int]]:
    """Addresses sharing long prefixes, so networks cut from them nest."""
    pool: dict[int, list[int]] = {}
    for version, width in WIDTH.items():
        base = draw(st.integers(0, 2**width - 1))
        spreads = draw(st.lists(st.integers(0, width), min_size=1, max_size=4))
        pool[version] = [base ^ draw(st.integers(0, 2**s - 1)) for s in spreads]
    # The IPv4-mapped IPv6 forms of the IPv4 anchors: they must never match an
    # IPv4 network, only IPv6 ones such as ::ffff:0:0/96 or ::/0.
    pool[6] += [MAPPED | address for address in pool[4]]
    return pool


@st.composite
def near(draw: st.DrawFn, pool: dict[int, list[int]], exact: bool = False) -> Network:
    """A network cut from an anchor (or a random address) at some length."""
    version = draw(st.sampled_from([4, 6]))
    width = WIDTH[version]
    address = draw(
        st.one_of(st.sampled_from(pool[version]), st.integers(0, 2**width - 1))
    )
    lengths = st.one_of(st.integers(0, width), st.sampled_from(EDGES[version]))
    prefixlen = width if exact else draw(lengths)
    return make_network(version, address, prefixlen)


@dataclass
class Scenario:
    """Networks to register, then queries, deletions and moves to try."""

    networks: list[Network]
    queries: list[Network]
    deleted: set[int]
    moves: list[tuple[int, Network, bool]]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    pool = draw(anchors())
    nets = draw(st.lists(near(pool), max_size=16, unique=True))
    nets += [net for net in CATCH_ALLS if draw(st.booleans()) and net not in nets]
    queries = draw(st.lists(st.one_of(near(pool), near(pool, exact=True)), max_size=12))
    for address in pool[4]:
        mapped = f"::ffff:{ipaddress.IPv4Address(address)}"
        queries += [parse_query(mapped), parse_query(f"{mapped}/120")]
    if not nets:
        return Scenario(nets, queries, set(), [])
    indexes = st.integers(0, len(nets) - 1)
    deleted = draw(st.sets(indexes, max_size=8))
    moves = draw(st.lists(st.tuples(indexes, near(pool), st.booleans()), max_size=8))
    return Scenario(nets, queries, deleted, moves)


class Model:
    """A store holding a scenario's networks, and what it should hold."""

    def __init__(self, store: Store, scenario: Scenario) -> None:
        self.store = store
        self.scenario = scenario
        self.names: dict[Network, str] = {}
        self.ids: list[int] = []
        for number, network in enumerate(scenario.networks):
            name = f"site-{number}"
            self.ids.append(store.add_network(network, name).id)
            self.names[network] = name

    def check_lookups(self) -> None:
        for query in [*self.names, *self.scenario.queries]:
            expected = reference(self.names, query)
            assert found(self.store, query) == expected, f"lookup({query})"


def run_scenario(scenario: Scenario, act: Callable[[Model], None]) -> None:
    store = new_store()
    try:
        model = Model(store, scenario)
        act(model)
        model.check_lookups()
    finally:
        store.close()


PROPERTY = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(scenarios())
def test_lookup_returns_most_specific_registered_network(scenario: Scenario) -> None:
    run_scenario(scenario, lambda model: None)


def delete_some(model: Model) -> None:
    for index in model.scenario.deleted:
        model.store.delete_network(model.ids[index])
        del model.names[model.scenario.networks[index]]


@PROPERTY
@given(scenarios())
def test_lookup_after_deleting_networks_ignores_them(scenario: Scenario) -> None:
    run_scenario(scenario, delete_some)


def move_some(model: Model) -> None:
    current = dict(enumerate(model.scenario.networks))
    for number, (index, target, rename) in enumerate(model.scenario.moves):
        network_id, network = model.ids[index], current[index]
        name = model.names[network]
        if target in model.names and target != network:
            with pytest.raises(Conflict):
                model.store.update_network(network_id, network=target, name="X")
            continue
        if rename:
            name = f"moved-{number}"
        record = model.store.update_network(network_id, network=target, name=name)
        assert (record.id, record.cidr, record.name) == (network_id, str(target), name)
        del model.names[network]
        model.names[target], current[index] = name, target


@PROPERTY
@given(scenarios())
def test_lookup_after_update_network_finds_the_new_cidr_and_name(
    scenario: Scenario,
) -> None:
    run_scenario(scenario, move_some)


@PROPERTY
@given(scenarios())
def test_list_networks_within_matches_brute_force(scenario: Scenario) -> None:
    store = new_store()
    try:
        Model(store, scenario)
        for query in scenario.queries[:10]:
            listed = store.list_networks(limit=1000, within=query)
            expected = [
                str(net)
                for net in scenario.networks
                if net.version == query.version and net.subnet_of(query)  # type: ignore[arg-type]
            ]
            assert [record.cidr for record in listed] == expected, f"within {query}"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("version", "prefixlen"),
    [(4, n) for n in range(33)] + [(6, n) for n in range(129)],
)
def test_lookup_finds_a_network_of_every_prefix_length(
    store: Store, version: int, prefixlen: int
) -> None:
    width = WIDTH[version]
    address = int("10" * (width // 2), 2)  # 1010...: set bits on both sides
    network = make_network(version, address, prefixlen)
    store.add_network(network, "ONLY")
    query = make_network(version, address, width)
    assert found(store, query) == (str(network), "ONLY")


def test_lookup_of_ipv4_mapped_address_does_not_match_ipv4_network(
    store: Store,
) -> None:
    fill(store, [("10.0.0.0/8", "HQ"), ("0.0.0.0/0", "ANY-V4")])
    assert store.lookup(parse_query("::ffff:10.1.2.3")) is None


def test_lookup_of_ipv4_mapped_address_matches_mapped_ipv6_network(
    store: Store,
) -> None:
    fill(store, [("10.0.0.0/8", "HQ"), ("::ffff:0:0/96", "MAPPED")])
    record = store.lookup(parse_query("::ffff:10.1.2.3"))
    assert record is not None
    assert (record.cidr, record.name) == ("::ffff:0:0/96", "MAPPED")


def test_update_network_to_registered_cidr_conflicts_and_keeps_row(
    store: Store,
) -> None:
    ids = fill(store, NESTED)
    before = snapshot(store)
    with pytest.raises(Conflict):
        store.update_network(
            ids["3.0.0.0/8"], network=parse_cidr("10.0.0.0/8"), name="RENAMED"
        )
    assert snapshot(store) == before


# -- pages -----------------------------------------------------------------


def many(count: int) -> list[tuple[str, str]]:
    return [(f"10.{i // 256}.{i % 256}.0/24", f"site-{i % 3}") for i in range(count)]


def follow(
    store: Store,
    limit: int,
    between: Iterator[None] | None = None,
    *,
    name: str | None = None,
    within: Network | None = None,
) -> list[int]:
    """Page through the registry by cursor; return the ids seen, in order."""
    seen: list[int] = []
    cursor = encode_cursor(0)
    while True:
        after = decode_cursor(cursor)
        assert after is not None
        page = store.list_networks(after=after, limit=limit, name=name, within=within)
        assert len(page) <= limit
        if not page:
            return seen
        seen += [record.id for record in page]
        cursor = encode_cursor(page[-1].id)
        if between is not None:
            next(between, None)


@pytest.mark.parametrize(("count", "limit"), [(0, 5), (1, 1), (10, 5), (23, 7)])
def test_following_cursors_visits_every_network_once(
    store: Store, count: int, limit: int
) -> None:
    ids = fill(store, many(count))
    seen = follow(store, limit)
    assert seen == sorted(ids.values())


def test_following_cursors_while_rows_are_added_visits_every_network_once(
    store: Store,
) -> None:
    fill(store, many(12))

    def add_rows() -> Iterator[None]:
        for i in range(5):
            store.add_network(parse_cidr(f"172.16.{i}.0/24"), f"late-{i}")
            yield

    seen = follow(store, 4, add_rows())
    all_ids = [row[0] for row in snapshot(store)[0]]
    assert len(all_ids) == 17
    assert seen == all_ids


def test_list_networks_by_name_returns_only_that_name(store: Store) -> None:
    table = many(20)
    ids = fill(store, table)
    wanted = [ids[cidr] for cidr, name in table if name == "site-1"]
    assert follow(store, 2, name="site-1") == wanted
    assert store.list_networks(name="nobody") == []


@pytest.mark.parametrize(
    ("within", "expected"),
    [
        ("10.0.0.0/8", ["10.0.0.0/8", "10.20.0.0/16", "10.20.30.0/24"]),
        ("10.20.0.0/16", ["10.20.0.0/16", "10.20.30.0/24"]),
        ("10.20.30.0/24", ["10.20.30.0/24"]),
        ("10.20.30.0/25", []),
        ("0.0.0.0/0", ["3.0.0.0/8", "10.0.0.0/8", "10.20.0.0/16", "10.20.30.0/24"]),
        ("::/0", ["2001:db8::/32", "2001:db8:42::/48", "::ffff:10.0.0.0/104"]),
        ("2001:db8::/32", ["2001:db8::/32", "2001:db8:42::/48"]),
        ("::ffff:0:0/96", ["::ffff:10.0.0.0/104"]),
    ],
)
def test_list_networks_within_returns_networks_inside_it(
    store: Store, within: str, expected: list[str]
) -> None:
    fill(store, [*NESTED, ("::ffff:10.0.0.0/104", "MAPPED")])
    listed = follow(store, 2, within=parse_query(within))
    cidrs = [store.get_network(network_id).cidr for network_id in listed]
    assert sorted(cidrs) == sorted(str(parse_query(cidr)) for cidr in expected)


def test_list_networks_by_name_and_within_applies_both(store: Store) -> None:
    fill(store, [*NESTED, ("10.30.0.0/16", "LONDON"), ("11.0.0.0/8", "LONDON")])
    page = store.list_networks(name="LONDON", within=parse_query("10.0.0.0/8"))
    assert [record.cidr for record in page] == ["10.20.0.0/16", "10.30.0.0/16"]


# -- imports ---------------------------------------------------------------


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


GOOD_FILE = (
    "\ufeffcidr,name,comment\r\n"
    "10.0.0.0/8,HQ,main office\r\n"
    "2001:db8::/32,PARIS,\r\n"
    "\r\n"
    "192.168.0.0/16,  BRANCH  ,x,y,z\r\n"
    "2001:db8:42::/48,PARIS-LAB,é\r\n"
).encode()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1024 * 1024])
def test_import_good_file_with_bom_crlf_and_extra_columns_imports_every_row(
    store: Store, size: int
) -> None:
    count = store.import_networks(read_table(chunked(GOOD_FILE, size)))
    assert count == 4
    assert registry(store) == [
        ("10.0.0.0/8", "HQ"),
        ("2001:db8::/32", "PARIS"),
        ("192.168.0.0/16", "BRANCH"),
        ("2001:db8:42::/48", "PARIS-LAB"),
    ]
    assert name_at(store, "2001:db8:42::1") == "PARIS-LAB"


def test_import_reads_columns_by_header_name_in_any_order(store: Store) -> None:
    data = b"Name,CIDR\nTOKYO,3.0.0.0/8\n"
    assert store.import_networks(read_table([data])) == 1
    assert registry(store) == [("3.0.0.0/8", "TOKYO")]


FAILURES = {
    "not a network": (b"cidr,name\n11.0.0.0/8,A\nnope,B\n", 3, "nope"),
    "prefix too long": (b"cidr,name\n11.0.0.0/33,A\n", 2, "11.0.0.0/33"),
    "zero address, prefix too long": (
        b"cidr,name\n11.0.0.0/8,A\n0.0.0.0/33,B\n",
        3,
        "0.0.0.0/33",
    ),
    "host bits set": (b"cidr,name\n11.0.0.0/8,A\n12.1.2.3/8,B\n", 3, "12.0.0.0/8"),
    "empty name": (b"cidr,name\n11.0.0.0/8,A\n12.0.0.0/8,\n", 3, "name"),
    "blank name": (b"cidr,name\n11.0.0.0/8,A\n12.0.0.0/8,   \n", 3, "name"),
    "missing name column": (b"cidr,name\n11.0.0.0/8\n", 2, "column"),
    "repeated in the file": (
        b"cidr,name\n11.0.0.0/8,A\n12.0.0.0/8,B\n11.0.0.0/8,C\n",
        4,
        "11.0.0.0/8 is repeated in the file",
    ),
    "already registered": (
        b"cidr,name\n11.0.0.0/8,A\n10.20.0.0/16,B\n",
        3,
        "10.20.0.0/16 is already registered",
    ),
    "bad header": (b"network,site\n11.0.0.0/8,A\n", 1, "header"),
    "empty file": (b"", 1, "empty"),
    "non-UTF-8 bytes": (b"cidr,name\n11.0.0.0/8,A\n12.0.0.0/8,\xff\xfe\n", 3, ""),
}


@pytest.mark.parametrize("size", [1024 * 1024, 1], ids=["one-chunk", "bytewise"])
@pytest.mark.parametrize("case", list(FAILURES))
def test_failing_import_names_the_line_and_leaves_registry_as_before(
    store: Store, case: str, size: int
) -> None:
    data, line, words = FAILURES[case]
    fill(store, NESTED)
    before = snapshot(store)
    with pytest.raises(ImportFailed) as failure:
        store.import_networks(read_table(chunked(data, size)))
    assert failure.value.line == line
    assert failure.value.message.startswith(f"line {line}: ")
    assert words in failure.value.reason
    assert snapshot(store) == before


def test_import_with_replace_swaps_the_whole_registry(store: Store) -> None:
    fill(store, NESTED)
    data = b"cidr,name\n10.20.0.0/16,NEW-LONDON\n172.16.0.0/12,LAB\n"
    assert store.import_networks(read_table([data]), replace=True) == 2
    assert registry(store) == [("10.20.0.0/16", "NEW-LONDON"), ("172.16.0.0/12", "LAB")]
    assert name_at(store, "3.3.3.3") is None
    assert name_at(store, "10.20.30.1") == "NEW-LONDON"


@pytest.mark.parametrize(
    "case", [case for case in FAILURES if case != "already registered"]
)
def test_failing_import_with_replace_keeps_the_old_registry(
    store: Store, case: str
) -> None:
    data, _, _ = FAILURES[case]
    fill(store, NESTED)
    before = snapshot(store)
    with pytest.raises(ImportFailed):
        store.import_networks(read_table([data]), replace=True)
    assert snapshot(store) == before
    assert name_at(store, "3.3.3.3") == "TOKYO"
