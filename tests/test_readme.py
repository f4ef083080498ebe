"""The README's curl walkthrough, run as written against a demo server.

Each command of the walkthrough block runs in one bash session (so variables
carry over). A comment right after a command states its output: JSON, where
a string "..." matches any string, or a status line, optionally followed by
`...` and the JSON body. Only the port is changed, to a free one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import Server

README = Path(__file__).resolve().parent.parent / "README.md"
MARK = "__wsgi_app_readme_step__"


def walkthrough() -> list[tuple[str, list[str]]]:
    """Return (command, expected-output comments) pairs of the curl block."""
    text = README.read_text()
    section = text.split("## Try it with curl", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    steps: list[tuple[str, list[str]]] = []
    expecting = False
    for line in block.group(1).splitlines():
        if expecting and line.startswith(("# {", "# HTTP/")):
            steps[-1][1].append(line[2:])
        elif line.strip() and not line.startswith("#"):
            steps.append((line, []))
            expecting = True
            continue
        expecting = expecting and line.startswith("# ")
    return steps


def matches(expected: Any, actual: Any) -> bool:
    if expected == "...":
        return isinstance(actual, str)
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(matches(expected[k], actual[k]) for k in expected)
        )
    return bool(expected == actual)


def check(expected: list[str], output: str) -> None:
    lines = [line.rstrip("\r") for line in output.strip().splitlines()]
    want = " ".join(expected)
    if want.startswith("HTTP/"):
        status, _, body = want.partition(" ... ")
        assert lines[0] == status, (want, output)
        if body:
            assert matches(json.loads(body), json.loads(lines[-1])), (want, output)
    else:
        assert matches(json.loads(want), json.loads(lines[-1])), (want, output)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_readme_curl_walkthrough_runs_as_written(env: dict[str, str]) -> None:
    steps = walkthrough()
    assert len(steps) >= 6
    assert any("3.3.3.0/8" in command for command, _ in steps)
    demo = Server(["demo"], env)
    try:
        port = demo.base.rsplit(":", 1)[1]
        script = "".join(
            f"echo {MARK}\n{command.replace('127.0.0.1:5000', '127.0.0.1:' + port)}\n"
            for command, _ in steps
        )
        result = subprocess.run(
            ["bash", "-e", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        demo.stop()
    assert result.returncode == 0, result.stderr
    outputs = result.stdout.split(MARK + "\n")[1:]
    assert len(outputs) == len(steps)
    checked = 0
    for (_command, expected), output in zip(steps, outputs, strict=True):
        if expected:
            check(expected, output)
            checked += 1
    assert checked >= 5
