"""The network routes through Werkzeug's test client, and the network commands."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from wsgi_app import App
from wsgi_app.cli import main
from wsgi_app.networks import parse_cidr, read_table
from wsgi_app.store import Store

from conftest import FAST_HASH, auth, body, count

NESTED = {
    "3.0.0.0/8": "TOKYO",
    "10.0.0.0/8": "HQ",
    "10.20.0.0/16": "LONDON",
    "10.20.30.0/24": "LONDON-LAB",
    "2001:db8::/32": "PARIS",
    "2001:db8:42::/48": "PARIS-LAB",
}


def rows(app: App) -> list[tuple[int, str, str]]:
    cursor = app.store.conn.execute("SELECT id, cidr, name FROM networks ORDER BY id")
    return [tuple(row) for row in cursor]


def lookup(client: Client, token: str, query: str) -> TestResponse:
    return client.get(
        "/net/", query_string={"specific_net": query}, headers=auth(token)
    )


def import_csv(app: App, text: str) -> None:
    app.store.import_networks(read_table([text.encode()]))


def csv_of(size: int) -> str:
    lines = [f"172.{i // 256}.{i % 256}.0/24,site-{i}" for i in range(size)]
    return "cidr,name\n" + "\n".join(lines) + "\n"


def follow(
    client: Client, token: str, path: str, script_name: str = ""
) -> list[dict[str, Any]]:
    """GET a page, then its ``next`` link until null; return every network."""
    seen: list[dict[str, Any]] = []
    while True:
        response = client.get(
            path, headers=auth(token), environ_overrides={"SCRIPT_NAME": script_name}
        )
        assert response.status_code == 200, response.data
        page = body(response)
        seen += page["networks"]
        if page["next"] is None:
            return seen
        assert page["next"].startswith(f"{script_name}/net/?")
        path = page["next"][len(script_name) :]
        assert len(seen) < 10_000


# -- lookup ----------------------------------------------------------------


def test_lookup_clears_host_bits_and_answers_the_containing_network(
    client: Client, alice_token: str, nets: dict[str, int]
) -> None:
    response = lookup(client, alice_token, "3.3.3.0/8")
    assert response.status_code == 200
    assert body(response) == {"message": "TOKYO", "network": "3.0.0.0/8"}


@pytest.mark.parametrize(
    ("query", "site", "network"),
    [
        ("10.20.30.5", "LONDON-LAB", "10.20.30.0/24"),
        ("10.20.30.0/24", "LONDON-LAB", "10.20.30.0/24"),
        ("10.20.31.0/24", "LONDON", "10.20.0.0/16"),
        ("10.99.0.1", "HQ", "10.0.0.0/8"),
        ("2001:db8:42::1", "PARIS-LAB", "2001:db8:42::/48"),
        ("2001:db8:42:1::/64", "PARIS-LAB", "2001:db8:42::/48"),
        ("2001:db8:43::/64", "PARIS", "2001:db8::/32"),
    ],
    ids=[
        "address-in-nested",
        "exact-network",
        "network-in-middle",
        "bare-address",
        "ipv6-address",
        "ipv6-network",
        "ipv6-outer",
    ],
)
def test_lookup_answers_the_most_specific_containing_network(
    client: Client,
    alice_token: str,
    nets: dict[str, int],
    query: str,
    site: str,
    network: str,
) -> None:
    response = lookup(client, alice_token, query)
    assert response.status_code == 200
    assert body(response) == {"message": site, "network": network}


@pytest.mark.parametrize(
    "query",
    ["192.0.2.1", "11.0.0.0/8", "10.0.0.0/7", "0.0.0.0/0", "::ffff:3.3.3.3", "::/0"],
)
def test_lookup_with_no_containing_network_is_404_json(
    client: Client, alice_token: str, nets: dict[str, int], query: str
) -> None:
    response = lookup(client, alice_token, query)
    assert response.status_code == 404
    assert isinstance(body(response)["message"], str)


@pytest.mark.parametrize(
    "query", ["abc", "10.0.0.0/33", "", "10.0.0.256", "10.0.0.0/x", "2001:db8::/129"]
)
def test_lookup_of_not_a_network_is_400_json(
    client: Client, alice_token: str, nets: dict[str, int], query: str
) -> None:
    response = lookup(client, alice_token, query)
    assert response.status_code == 400
    assert isinstance(body(response)["message"], str)


# -- listing ---------------------------------------------------------------


def test_listing_without_limit_gives_pages_of_100(
    client: Client, app: App, alice_token: str
) -> None:
    import_csv(app, csv_of(105))
    page = body(client.get("/net/", headers=auth(alice_token)))
    assert len(page["networks"]) == 100
    assert page["next"] is not None
    assert set(page["networks"][0]) == {"id", "cidr", "name"}


def test_listing_with_limit_1000_gives_everything_in_one_page(
    client: Client, app: App, alice_token: str
) -> None:
    import_csv(app, csv_of(105))
    response = client.get("/net/?limit=1000", headers=auth(alice_token))
    assert response.status_code == 200
    page = body(response)
    assert len(page["networks"]) == 105
    assert page["next"] is None


@pytest.mark.parametrize("limit", ["1001", "0", "abc", "-1", "", "1.5"])
def test_listing_with_bad_limit_is_400(
    client: Client, alice_token: str, nets: dict[str, int], limit: str
) -> None:
    response = client.get(
        "/net/", query_string={"limit": limit}, headers=auth(alice_token)
    )
    assert response.status_code == 400
    assert "limit" in body(response)["message"]


def test_following_next_visits_every_network_once(
    client: Client, alice_token: str, nets: dict[str, int]
) -> None:
    seen = follow(client, alice_token, "/net/?limit=4")
    assert sorted(net["id"] for net in seen) == sorted(nets.values())
    assert {net["cidr"]: net["name"] for net in seen} == NESTED


def test_following_next_while_networks_are_added_visits_each_once(
    client: Client, app: App, alice_token: str, nets: dict[str, int]
) -> None:
    seen: list[int] = []
    url: str | None = "/net/?limit=2"
    added = 0
    while url is not None:
        page = body(client.get(url, headers=auth(alice_token)))
        seen += [net["id"] for net in page["networks"]]
        url = page["next"]
        if added < 3:
            app.store.add_network(parse_cidr(f"172.16.{added}.0/24"), "LATE")
            added += 1
    assert seen == [row[0] for row in rows(app)]
    assert len(seen) == len(nets) + 3


@pytest.mark.parametrize("cursor", ["!!!", "bm90YW5pZA", "", "n5", "%%"])
def test_listing_with_bad_cursor_is_400(
    client: Client, alice_token: str, nets: dict[str, int], cursor: str
) -> None:
    response = client.get(
        "/net/", query_string={"cursor": cursor}, headers=auth(alice_token)
    )
    assert response.status_code == 400
    assert isinstance(body(response)["message"], str)


def test_listing_by_name_follows_pages_of_that_name_only(
    client: Client, app: App, alice_token: str, nets: dict[str, int]
) -> None:
    import_csv(app, "cidr,name\n172.16.0.0/12,LONDON\n192.168.0.0/16,LONDON\n")
    seen = follow(client, alice_token, "/net/?name=LONDON&limit=1")
    assert [net["cidr"] for net in seen] == [
        "10.20.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
    ]


def test_listing_within_follows_pages_of_networks_inside_it(
    client: Client, alice_token: str, nets: dict[str, int]
) -> None:
    seen = follow(client, alice_token, "/net/?within=10.0.0.0/8&limit=1")
    assert [net["cidr"] for net in seen] == [
        "10.0.0.0/8",
        "10.20.0.0/16",
        "10.20.30.0/24",
    ]


def test_listing_within_not_a_network_is_400(
    client: Client, alice_token: str, nets: dict[str, int]
) -> None:
    response = client.get("/net/?within=abc", headers=auth(alice_token))
    assert response.status_code == 400
    assert isinstance(body(response)["message"], str)


def test_next_link_keeps_the_mount_prefix(
    client: Client, alice_token: str, nets: dict[str, int]
) -> None:
    response = client.get(
        "/net/?limit=2",
        headers=auth(alice_token),
        environ_overrides={"SCRIPT_NAME": "/api"},
    )
    assert response.status_code == 200
    assert body(response)["next"].startswith("/api/net/?")
    seen = follow(client, alice_token, "/net/?limit=2", script_name="/api")
    assert sorted(net["id"] for net in seen) == sorted(nets.values())


# -- creating --------------------------------------------------------------


def post_net(client: Client, token: str, payload: Any, **kwargs: Any) -> TestResponse:
    return client.post("/net/", json=payload, headers=auth(token), **kwargs)


def test_admin_registers_a_network_with_201_and_location(
    client: Client, app: App, admin_token: str
) -> None:
    response = post_net(client, admin_token, {"cidr": "10.0.0.0/8", "name": "HQ"})
    assert response.status_code == 201
    record = body(response)
    assert set(record) == {"id", "cidr", "name"}
    assert (record["cidr"], record["name"]) == ("10.0.0.0/8", "HQ")
    assert response.headers["Location"].endswith(f"/net/{record['id']}")
    assert rows(app) == [(record["id"], "10.0.0.0/8", "HQ")]


def test_location_of_a_new_network_keeps_the_mount_prefix(
    client: Client, admin_token: str
) -> None:
    response = post_net(
        client,
        admin_token,
        {"cidr": "10.0.0.0/8", "name": "HQ"},
        environ_overrides={"SCRIPT_NAME": "/api"},
    )
    assert response.status_code == 201
    network_id = body(response)["id"]
    assert response.headers["Location"].endswith(f"/api/net/{network_id}")


def test_registering_with_host_bits_set_is_400_naming_the_network(
    client: Client, app: App, admin_token: str
) -> None:
    response = post_net(client, admin_token, {"cidr": "10.1.2.3/8", "name": "HQ"})
    assert response.status_code == 400
    assert "10.0.0.0/8" in body(response)["message"]
    assert count(app, "networks") == 0


@pytest.mark.parametrize("cidr", ["3.0.0.0/8", "3.0.0.0/255.0.0.0", " 3.0.0.0/8 "])
def test_registering_a_registered_network_is_409(
    client: Client, app: App, admin_token: str, nets: dict[str, int], cidr: str
) -> None:
    before = rows(app)
    response = post_net(client, admin_token, {"cidr": cidr, "name": "AGAIN"})
    assert response.status_code == 409
    assert isinstance(body(response)["message"], str)
    assert rows(app) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"cidr": "11.0.0.0/8"},
        {"cidr": "11.0.0.0/8", "name": ""},
        {"cidr": "11.0.0.0/8", "name": "   "},
        {"cidr": "11.0.0.0/8", "name": None},
        {"cidr": "11.0.0.0/8", "name": 5},
        {"cidr": "11.0.0.0/8", "name": "x" * 201},
        {"name": "SITE"},
        {"cidr": None, "name": "SITE"},
        {"cidr": 11, "name": "SITE"},
        {"cidr": "abc", "name": "SITE"},
        {"cidr": "", "name": "SITE"},
        ["11.0.0.0/8", "SITE"],
        "11.0.0.0/8",
        None,
    ],
    ids=[
        "missing-name",
        "empty-name",
        "blank-name",
        "null-name",
        "number-name",
        "long-name",
        "missing-cidr",
        "null-cidr",
        "number-cidr",
        "not-a-network",
        "empty-cidr",
        "json-array",
        "json-string",
        "json-null",
    ],
)
def test_registering_with_a_bad_body_is_400_and_stores_nothing(
    client: Client, app: App, admin_token: str, nets: dict[str, int], payload: Any
) -> None:
    before = rows(app)
    response = post_net(client, admin_token, payload)
    assert response.status_code == 400
    assert isinstance(body(response)["message"], str)
    assert rows(app) == before


@pytest.mark.parametrize(
    "data", [b"", b"not json", b"{", b'{"cidr": "11.0.0.0/8", "name": NaN}']
)
def test_registering_with_a_non_json_body_is_400_and_stores_nothing(
    client: Client, app: App, admin_token: str, nets: dict[str, int], data: bytes
) -> None:
    before = rows(app)
    response = client.post(
        "/net/", data=data, content_type="application/json", headers=auth(admin_token)
    )
    assert response.status_code == 400
    assert isinstance(body(response)["message"], str)
    assert rows(app) == before


def test_registering_with_a_body_over_1_mib_is_413_and_stores_nothing(
    client: Client, app: App, admin_token: str, nets: dict[str, int]
) -> None:
    before = rows(app)
    data = json.dumps({"cidr": "11.0.0.0/8", "name": "x" * (1024 * 1024)}).encode()
    response = client.post(
        "/net/", data=data, content_type="application/json", headers=auth(admin_token)
    )
    assert response.status_code == 413
    assert isinstance(body(response)["message"], str)
    assert rows(app) == before


def test_non_admin_registering_is_403_and_stores_nothing(
    client: Client, app: App, alice_token: str, nets: dict[str, int]
) -> None:
    before = rows(app)
    response = post_net(client, alice_token, {"cidr": "11.0.0.0/8", "name": "X"})
    assert response.status_code == 403
    assert body(response) == {"message": "Cannot perform that function!"}
    assert rows(app) == before


# -- one network -----------------------------------------------------------


def test_admin_gets_one_network(
    client: Client, admin_token: str, nets: dict[str, int]
) -> None:
    network_id = nets["10.20.0.0/16"]
    response = client.get(f"/net/{network_id}", headers=auth(admin_token))
    assert response.status_code == 200
    assert body(response) == {
        "id": network_id,
        "cidr": "10.20.0.0/16",
        "name": "LONDON",
    }


def test_admin_renames_a_network(
    client: Client, app: App, admin_token: str, nets: dict[str, int]
) -> None:
    network_id = nets["10.20.0.0/16"]
    response = client.put(
        f"/net/{network_id}", json={"name": "LONDON-2"}, headers=auth(admin_token)
    )
    assert response.status_code == 200
    assert body(response) == {
        "id": network_id,
        "cidr": "10.20.0.0/16",
        "name": "LONDON-2",
    }
    assert app.store.get_network(network_id).name == "LONDON-2"


def test_admin_moves_a_network_and_lookups_follow(
    client: Client, app: App, admin_token: str, nets: dict[str, int]
) -> None:
    network_id = nets["3.0.0.0/8"]
    response = client.put(
        f"/net/{network_id}", json={"cidr": "4.0.0.0/8"}, headers=auth(admin_token)
    )
    assert response.status_code == 200
    assert body(response) == {"id": network_id, "cidr": "4.0.0.0/8", "name": "TOKYO"}
    assert lookup(client, admin_token, "3.3.3.3").status_code == 404
    assert body(lookup(client, admin_token, "4.4.4.4")) == {
        "message": "TOKYO",
        "network": "4.0.0.0/8",
    }


def test_admin_deletes_a_network_with_204(
    client: Client, app: App, admin_token: str, nets: dict[str, int]
) -> None:
    network_id = nets["10.20.30.0/24"]
    response = client.delete(f"/net/{network_id}", headers=auth(admin_token))
    assert response.status_code == 204
    assert response.data == b""
    assert count(app, "networks") == len(nets) - 1
    assert (
        client.get(f"/net/{network_id}", headers=auth(admin_token)).status_code == 404
    )
    assert body(lookup(client, admin_token, "10.20.30.5"))["message"] == "LONDON"


@pytest.mark.parametrize(
    ("method", "payload"),
    [("GET", None), ("PUT", {"name": "X"}), ("DELETE", None)],
)
def test_unknown_network_id_is_404(
    client: Client,
    app: App,
    admin_token: str,
    nets: dict[str, int],
    method: str,
    payload: Any,
) -> None:
    before = rows(app)
    response = client.open(
        "/net/999999", method=method, json=payload, headers=auth(admin_token)
    )
    assert response.status_code == 404
    assert isinstance(body(response)["message"], str)
    assert rows(app) == before


def test_moving_a_network_onto_a_registered_cidr_is_409_and_keeps_the_row(
    client: Client, app: App, admin_token: str, nets: dict[str, int]
) -> None:
    before = rows(app)
    response = client.put(
        f"/net/{nets['3.0.0.0/8']}",
        json={"cidr": "10.0.0.0/8", "name": "RENAMED"},
        headers=auth(admin_token),
    )
    assert response.status_code == 409
    assert isinstance(body(response)["message"], str)
    assert rows(app) == before


@pytest.mark.parametrize("payload", [{}, {"other": "x"}])
def test_updating_with_neither_cidr_nor_name_is_400(
    client: Client, app: App, admin_token: str, nets: dict[str, int], payload: Any
) -> None:
    before = rows(app)
    response = client.put(
        f"/net/{nets['3.0.0.0/8']}", json=payload, headers=auth(admin_token)
    )
    assert response.status_code == 400
    assert isinstance(body(response)["message"], str)
    assert rows(app) == before


def test_moving_a_network_to_cidr_with_host_bits_is_400_naming_the_network(
    client: Client, app: App, admin_token: str, nets: dict[str, int]
) -> None:
    before = rows(app)
    response = client.put(
        f"/net/{nets['3.0.0.0/8']}",
        json={"cidr": "4.1.2.3/8", "name": "RENAMED"},
        headers=auth(admin_token),
    )
    assert response.status_code == 400
    assert "4.0.0.0/8" in body(response)["message"]
    assert rows(app) == before


@pytest.mark.parametrize(
    ("method", "payload"),
    [("GET", None), ("PUT", {"name": "X"}), ("DELETE", None)],
)
def test_non_admin_on_one_network_is_403_and_changes_nothing(
    client: Client,
    app: App,
    alice_token: str,
    nets: dict[str, int],
    method: str,
    payload: Any,
) -> None:
    before = rows(app)
    response = client.open(
        f"/net/{nets['3.0.0.0/8']}",
        method=method,
        json=payload,
        headers=auth(alice_token),
    )
    assert response.status_code == 403
    assert body(response) == {"message": "Cannot perform that function!"}
    assert rows(app) == before


# -- importing -------------------------------------------------------------


def post_csv(client: Client, token: str, data: bytes, query: str = "") -> TestResponse:
    return client.post(
        "/net/import" + query, data=data, content_type="text/csv", headers=auth(token)
    )


GOOD_CSV = b"\xef\xbb\xbfcidr,name\r\n11.0.0.0/8,ELEVEN\r\n2001:db9::/32,NINE\r\n"
BAD_CSV = b"cidr,name\n11.0.0.0/8,ELEVEN\n12.1.0.0/8,TWELVE\n"


def test_admin_imports_a_csv_body(
    client: Client, app: App, admin_token: str, nets: dict[str, int]
) -> None:
    before = rows(app)
    response = post_csv(client, admin_token, GOOD_CSV)
    assert response.status_code == 200
    assert body(response)["imported"] == 2
    assert rows(app)[: len(before)] == before
    assert [row[1:] for row in rows(app)[len(before) :]] == [
        ("11.0.0.0/8", "ELEVEN"),
        ("2001:db9::/32", "NINE"),
    ]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (BAD_CSV, "12.0.0.0/8"),
        (b"cidr,name\n11.0.0.0/8,ELEVEN\nnope,X\n", "nope"),
        (b"cidr,name\n11.0.0.0/8,ELEVEN\n0.0.0.0/33,X\n", "0.0.0.0/33"),
        (b"cidr,name\n11.0.0.0/8,ELEVEN\n12.0.0.0/8,\n", "name"),
        (b"cidr,name\n11.0.0.0/8,ELEVEN\n11.0.0.0/8,AGAIN\n", "repeated"),
    ],
    ids=["host-bits", "not-a-network", "zero-slash-33", "empty-name", "repeated"],
)
def test_import_with_a_bad_row_is_400_naming_the_line_and_imports_nothing(
    client: Client,
    app: App,
    admin_token: str,
    nets: dict[str, int],
    data: bytes,
    words: str,
) -> None:
    before = rows(app)
    response = post_csv(client, admin_token, data)
    assert response.status_code == 400
    message = body(response)["message"]
    assert "line 3" in message
    assert words in message
    assert rows(app) == before


def test_import_of_a_registered_network_is_400_and_imports_nothing(
    client: Client, app: App, admin_token: str, nets: dict[str, int]
) -> None:
    before = rows(app)
    data = b"cidr,name\n11.0.0.0/8,ELEVEN\n10.20.0.0/16,AGAIN\n"
    response = post_csv(client, admin_token, data)
    assert response.status_code == 400
    assert "line 3" in body(response)["message"]
    assert "already registered" in body(response)["message"]
    assert rows(app) == before


def test_import_body_over_1_mib_is_accepted(
    client: Client, app: App, admin_token: str
) -> None:
    data = b"cidr,name\n" + b"".join(
        f"11.{i // 256}.{i % 256}.0/24,{'N' * 190}{i}\n".encode() for i in range(6000)
    )
    assert len(data) > 1024 * 1024
    response = post_csv(client, admin_token, data)
    assert response.status_code == 200
    assert body(response)["imported"] == 6000
    assert count(app, "networks") == 6000


def test_non_admin_import_is_403_and_imports_nothing(
    client: Client, app: App, alice_token: str, nets: dict[str, int]
) -> None:
    before = rows(app)
    response = post_csv(client, alice_token, GOOD_CSV)
    assert response.status_code == 403
    assert body(response) == {"message": "Cannot perform that function!"}
    assert rows(app) == before


def test_import_with_replace_true_swaps_the_registry(
    client: Client, app: App, admin_token: str, nets: dict[str, int]
) -> None:
    data = b"cidr,name\n3.0.0.0/8,NEW-TOKYO\n11.0.0.0/8,ELEVEN\n"
    response = post_csv(client, admin_token, data, "?replace=true")
    assert response.status_code == 200
    assert body(response)["imported"] == 2
    assert [row[1:] for row in rows(app)] == [
        ("3.0.0.0/8", "NEW-TOKYO"),
        ("11.0.0.0/8", "ELEVEN"),
    ]
    assert lookup(client, admin_token, "10.1.1.1").status_code == 404


def test_failing_import_with_replace_true_keeps_the_old_registry(
    client: Client, app: App, admin_token: str, nets: dict[str, int]
) -> None:
    before = rows(app)
    response = post_csv(client, admin_token, BAD_CSV, "?replace=true")
    assert response.status_code == 400
    assert "line 3" in body(response)["message"]
    assert rows(app) == before


# -- the command line ------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSGI_APP_SECRET_KEY", "k" * 40)


def db_rows(database: str) -> list[tuple[int, str, str]]:
    with closing(sqlite3.connect(database)) as conn:
        cursor = conn.execute("SELECT id, cidr, name FROM networks ORDER BY id")
        return [tuple(row) for row in cursor]


def seed(database: str) -> list[tuple[int, str, str]]:
    store = Store(database, password_method=FAST_HASH)
    try:
        store.init_schema()
        for cidr, name in NESTED.items():
            store.add_network(parse_cidr(cidr), name)
    finally:
        store.close()
    return db_rows(database)


def write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "nets.csv"
    path.write_bytes(data)
    return str(path)


def test_cli_import_nets_prints_a_one_line_summary_with_the_count(
    cli_env: None, database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = seed(database)
    status = main(["import-nets", write(tmp_path, GOOD_CSV), "--database", database])
    out, err = capsys.readouterr()
    assert status == 0
    assert len(out.splitlines()) == 1
    assert " 2 " in f" {out} "
    assert err == ""
    assert [row[1:] for row in db_rows(database)[len(before) :]] == [
        ("11.0.0.0/8", "ELEVEN"),
        ("2001:db9::/32", "NINE"),
    ]


@pytest.mark.parametrize(
    "data",
    [BAD_CSV, b"cidr,name\n11.0.0.0/8,ELEVEN\n0.0.0.0/33,X\n"],
    ids=["host-bits", "zero-slash-33"],
)
def test_cli_import_nets_with_a_bad_row_fails_naming_the_line(
    cli_env: None,
    database: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    data: bytes,
) -> None:
    before = seed(database)
    status = main(["import-nets", write(tmp_path, data), "--database", database])
    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("wsgi-app: error:")
    assert "line 3" in err
    assert db_rows(database) == before


def test_cli_import_nets_with_replace_swaps_the_registry(
    cli_env: None, database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(database)
    path = write(tmp_path, GOOD_CSV)
    status = main(["import-nets", path, "--replace", "--database", database])
    out, _ = capsys.readouterr()
    assert status == 0
    assert len(out.splitlines()) == 1
    assert " 2 " in f" {out} "
    assert [row[1:] for row in db_rows(database)] == [
        ("11.0.0.0/8", "ELEVEN"),
        ("2001:db9::/32", "NINE"),
    ]


def test_cli_import_nets_with_replace_and_a_bad_row_keeps_the_registry(
    cli_env: None, database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = seed(database)
    path = write(tmp_path, BAD_CSV)
    status = main(["import-nets", path, "--replace", "--database", database])
    _, err = capsys.readouterr()
    assert status == 1
    assert err.startswith("wsgi-app: error:")
    assert db_rows(database) == before


def test_cli_import_nets_of_a_missing_file_fails_in_one_line(
    cli_env: None, database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = seed(database)
    missing = str(tmp_path / "missing.csv")
    status = main(["import-nets", missing, "--database", database])
    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("wsgi-app: error:")
    assert db_rows(database) == before


def test_cli_add_net_registers_the_network(
    cli_env: None, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["add-net", "10.0.0.0/8", "HQ", "--database", database])
    out, err = capsys.readouterr()
    assert status == 0
    assert "10.0.0.0/8" in out
    assert err == ""
    assert [row[1:] for row in db_rows(database)] == [("10.0.0.0/8", "HQ")]


def test_cli_add_net_with_host_bits_set_fails_naming_the_network(
    cli_env: None, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["add-net", "10.1.2.3/8", "HQ", "--database", database])
    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("wsgi-app: error:")
    assert "10.0.0.0/8" in err
    assert db_rows(database) == []
