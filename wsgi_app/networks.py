"""Parse networks and network tables, and compute their index keys."""

from __future__ import annotations

import csv
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from typing import TypeAlias

from .errors import BadRequest
from .text import printable

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_NAME_LENGTH = 200
MAX_CIDR_LENGTH = 100
MAX_LINE_BYTES = 64 * 1024


class ImportFailed(BadRequest):
    """A row of a network table is refused; nothing was imported."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}")


def parse_query(text: str) -> Network:
    """Parse a lookup: an address or a network, host bits cleared.

    Raises:
        BadRequest: when the text is not an address or a network.
    """
    try:
        if len(text) > MAX_CIDR_LENGTH or "%" in text:
            raise ValueError(text)
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise BadRequest(f"Not a network: {text[:MAX_CIDR_LENGTH]!r}") from None


def parse_cidr(text: str) -> Network:
    """Parse a network to register: host bits must be clear.

    Raises:
        BadRequest: naming the canonical network when host bits are set.
    """
    network = parse_query(text)
    try:
        ipaddress.ip_network(text.strip())
    except ValueError:
        raise BadRequest(
            f"{text.strip()} has host bits set; did you mean {network}?"
        ) from None
    return network


def parse_name(value: object) -> str:
    """Check a site name: a non-empty printable string of bounded length."""
    if not isinstance(value, str) or not value.strip() or not printable(value):
        raise BadRequest("name must be a non-empty string of printable characters")
    name = value.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"name must be at most {MAX_NAME_LENGTH} characters")
    return name


# The columns a network is stored under: version, prefix length, the address
# as two 64-bit words (hi, lo; IPv4 sits in the top of hi), first and last
# address packed, and the canonical CIDR.
Columns: TypeAlias = tuple[int, int, int, int, bytes, bytes, str]

_WORD = 1 << 64


def _signed(word: int) -> int:
    """Return a 64-bit pattern as SQLite's signed integer."""
    return word - _WORD if word >= 1 << 63 else word


def words(network: Network) -> tuple[int, int]:
    """Return the network address as the (hi, lo) words the index holds."""
    value = int(network.network_address)
    if network.version == 4:
        return _signed(value << 32), 0
    return _signed(value >> 64), _signed(value & (_WORD - 1))


def columns(network: Network) -> Columns:
    """Return the stored columns of a network."""
    hi, lo = words(network)
    return (
        network.version,
        network.prefixlen,
        hi,
        lo,
        network.network_address.packed,
        network.broadcast_address.packed,
        str(network),
    )


def row_columns(text: str) -> Columns:
    """Parse a CIDR of an imported row straight to its stored columns.

    IPv4 takes a fast path through ``socket.inet_pton``; anything else, and
    every error, goes through ``parse_cidr`` so messages stay the same.
    """
    return _fast_ipv4(text) or columns(parse_cidr(text))


def _fast_ipv4(text: str) -> Columns | None:
    parts = _ipv4_parts(text)
    if parts is None:
        return None
    value, prefixlen = parts
    host = (1 << (32 - prefixlen)) - 1
    if value & host:
        return None
    packed = value.to_bytes(4, "big")
    last = (value | host).to_bytes(4, "big")
    cidr = f"{socket.inet_ntoa(packed)}/{prefixlen}"
    return (4, prefixlen, _signed(value << 32), 0, packed, last, cidr)


def _ipv4_parts(text: str) -> tuple[int, int] | None:
    """Return (address, prefix length) of plain IPv4 text, or None."""
    address, slash, length = text.strip().partition("/")
    if slash and not (length.isascii() and length.isdigit() and len(length) <= 2):
        return None
    prefixlen = int(length) if slash else 32
    if prefixlen > 32:
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET, address)
    except (OSError, ValueError):
        return None
    return int.from_bytes(packed, "big"), prefixlen


QueryKey: TypeAlias = tuple[int, int, int, int]


def query_key(text: str) -> QueryKey:
    """Return (version, prefix length, hi, lo) of a lookup, host bits cleared.

    Raises:
        BadRequest: when the text is not an address or a network.
    """
    parts = _ipv4_parts(text) if len(text) <= MAX_CIDR_LENGTH else None
    if parts is not None:
        value, prefixlen = parts
        value &= ~((1 << (32 - prefixlen)) - 1)
        return (4, prefixlen, _signed(value << 32), 0)
    network = parse_query(text)
    return (network.version, network.prefixlen, *words(network))


def read_table(chunks: Iterable[bytes]) -> Iterator[tuple[int, Columns, str]]:
    """Yield ``(line, columns, name)`` from CSV bytes with a ``cidr,name`` header.

    The input is decoded and parsed as it streams; a BOM and CRLF line ends
    are accepted and extra columns ignored.

    Raises:
        ImportFailed: for the first bad row, with its line number.
    """
    reader = csv.reader(_lines(chunks))
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFailed(1, "empty file; expected a cidr,name header")
        columns = [column.strip().lower() for column in header]
        if "cidr" not in columns or "name" not in columns:
            raise ImportFailed(1, "header must name the columns cidr and name")
        cidr_at, name_at = columns.index("cidr"), columns.index("name")
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(cidr_at, name_at):
                raise ImportFailed(line, "missing the cidr or name column")
            try:
                yield line, row_columns(row[cidr_at]), parse_name(row[name_at])
            except BadRequest as exc:
                raise ImportFailed(line, exc.message) from None
    except csv.Error as exc:
        raise ImportFailed(reader.line_num + 1, f"not CSV text: {exc}") from None


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Split bytes into lines and decode each, so errors know their line."""
    pending = b""
    number = 0
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            number += 1
            yield _decode(line + b"\n", number)
        if len(pending) > MAX_LINE_BYTES:
            raise ImportFailed(number + 1, f"line longer than {MAX_LINE_BYTES} bytes")
    if pending:
        yield _decode(pending, number + 1)


def _decode(line: bytes, number: int) -> str:
    try:
        return line.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError:
        raise ImportFailed(number, "not UTF-8 text") from None
