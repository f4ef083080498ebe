"""End to end: the real ``wsgi-app`` processes, over real HTTP on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from conftest import Server, basic, run_cli


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[Server]:
    assert run_cli("init-db", env=env).returncode == 0
    created = run_cli(
        "create-user",
        "admin",
        "--admin",
        "--password-stdin",
        stdin="admin-password-123\n",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    added = run_cli("add-net", "3.0.0.0/8", "TOKYO", env=env)
    assert added.returncode == 0, added.stderr
    served = Server(["serve"], env)
    yield served
    served.stop()


def test_served_login_lookup_and_tampered_token(server: Server) -> None:
    status, headers, data = server.request(
        "/login", basic("admin", "admin-password-123")
    )
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert isinstance(data, dict)
    token = data["token"]
    status, _, data = server.request(
        "/net/?specific_net=3.3.3.0/8", {"x-access-token": token}
    )
    assert (status, data) == (200, {"message": "TOKYO", "network": "3.0.0.0/8"})
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    status, headers, data = server.request(
        "/net/?specific_net=3.3.3.0/8", {"x-access-token": tampered}
    )
    assert (status, data) == (401, {"message": "Token is invalid!"})
    assert headers["WWW-Authenticate"].startswith("Bearer")


def test_served_requests_are_access_logged_without_secrets(server: Server) -> None:
    _, _, data = server.request("/login", basic("admin", "admin-password-123"))
    assert isinstance(data, dict)
    token = data["token"]
    server.request("/net/?specific_net=3.3.3.3", {"Authorization": f"Bearer {token}"})
    log = server.stop()
    lines = [line for line in log.splitlines() if '"GET /net/' in line]
    assert len(lines) == 1
    assert re.match(
        r"127\.0\.0\.1 - [0-9a-f-]{36} \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
        r'"GET /net/\?specific_net=3\.3\.3\.3 HTTP/1\.1" 200 \d+$',
        lines[0],
    ), lines[0]
    assert token not in log and "admin-password-123" not in log


def test_demo_prints_accounts_and_serves_them(env: dict[str, str]) -> None:
    demo = Server(["demo"], env)
    try:
        banner = "".join(demo.banner)
        assert "demo-admin-password" in banner and "demo-alice-password" in banner
        assert f"curl -s -u admin:demo-admin-password {demo.base}/login" in banner
        status, _, data = demo.request("/login", basic("alice", "demo-alice-password"))
        assert status == 200
        assert isinstance(data, dict)
        status, _, data = demo.request(
            "/net/?specific_net=3.3.3.0/8", {"x-access-token": data["token"]}
        )
        assert (status, data) == (200, {"message": "TOKYO", "network": "3.0.0.0/8"})
    finally:
        demo.stop()


def test_command_line_errors_are_one_line(env: dict[str, str]) -> None:
    result = run_cli("add-net", "10.1.2.3/8", "X", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("wsgi-app: error: 10.1.2.3/8 has host bits set")
    assert "10.0.0.0/8" in result.stderr


def test_short_secret_key_refused_at_start(env: dict[str, str]) -> None:
    result = run_cli("serve", env={**env, "WSGI_APP_SECRET_KEY": "too-short"})
    assert result.returncode == 1
    assert "(WSGI_APP_SECRET_KEY) must be at least 32 bytes" in result.stderr
    assert "Traceback" not in result.stderr


def test_served_caches_see_changes_from_another_process(
    server: Server, env: dict[str, str]
) -> None:
    import sqlite3

    _, _, data = server.request("/login", basic("admin", "admin-password-123"))
    assert isinstance(data, dict)
    headers = {"x-access-token": data["token"]}
    for _ in range(3):
        status, _, data = server.request("/net/?specific_net=3.3.3.3", headers)
        assert data == {"message": "TOKYO", "network": "3.0.0.0/8"}
    outside = sqlite3.connect(env["WSGI_APP_DATABASE"], isolation_level=None)
    outside.execute("UPDATE networks SET name = 'OSAKA'")
    for _ in range(4):  # every waitress thread must see it
        _, _, data = server.request("/net/?specific_net=3.3.3.3", headers)
        assert data == {"message": "OSAKA", "network": "3.0.0.0/8"}
    outside.execute("DELETE FROM users")
    outside.close()
    status, _, data = server.request("/net/?specific_net=3.3.3.3", headers)
    assert (status, data) == (401, {"message": "Token is invalid!"})


def test_served_json_access_log_and_quiet(env: dict[str, str]) -> None:
    demo = Server(["demo", "--log-format", "json"], env)
    demo.request("/health")
    log = demo.stop()
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert entries and entries[-1]["path"] == "/health"
    assert entries[-1]["status"] == 200
    quiet = Server(["demo", "--quiet"], env)
    quiet.request("/health")
    assert "/health" not in quiet.stop()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["serve", "--port", "99999"], id="port-too-high"),
        pytest.param(["serve", "--port", "-1"], id="port-negative"),
        pytest.param(["serve", "--threads", "0"], id="no-threads"),
        pytest.param(["demo", "--port", "65536"], id="demo-port"),
    ],
)
def test_bad_server_options_are_one_line_usage_errors(
    env: dict[str, str], args: list[str]
) -> None:
    result = run_cli(*args, env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("wsgi-app")
    assert "Traceback" not in result.stderr


def test_busy_port_is_one_line_error(server: Server, env: dict[str, str]) -> None:
    port = server.base.rsplit(":", 1)[1]
    result = run_cli("serve", "--port", port, env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_create_user_without_terminal_asks_for_password_stdin(
    env: dict[str, str],
) -> None:
    result = run_cli("create-user", "bob", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "wsgi-app: error: no terminal to ask for the password; use --password-stdin"
    )


def test_successful_login_is_logged_with_the_user(server: Server) -> None:
    server.request("/login", basic("admin", "admin-password-123"))
    log = server.stop()
    (line,) = [line for line in log.splitlines() if '"GET /login' in line]
    assert re.match(r"127\.0\.0\.1 - [0-9a-f-]{36} ", line), line


def test_unusable_host_is_one_line_error(env: dict[str, str]) -> None:
    result = run_cli("serve", "--host", "256.1.1.1", "--port", "0", env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "cannot listen on 256.1.1.1" in result.stderr


def test_token_from_token_issue_is_accepted_by_the_running_server(
    server: Server, env: dict[str, str]
) -> None:
    issued = run_cli("token", "issue", "admin", "--ttl", "60", env=env)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    status, _, data = server.request(
        "/net/?specific_net=3.3.3.3", {"Authorization": f"Bearer {token}"}
    )
    assert (status, data) == (200, {"message": "TOKYO", "network": "3.0.0.0/8"})


@pytest.mark.parametrize("cpus", ["0-99999999999", "5-2", "x", "9999"])
def test_bad_cpu_lists_are_one_line_errors(env: dict[str, str], cpus: str) -> None:
    result = run_cli("serve", "--port", "0", "--cpus", cpus, env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("wsgi-app: error: --cpus")
