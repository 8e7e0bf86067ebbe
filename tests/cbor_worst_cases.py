"""Worst-case CBOR frames for the decoding-cost benchmark, and one benign frame.

``cbor_worst_cases(size)`` returns every shape as one CBOR item of at most ``size``
bytes (and close to it), keyed by name; ``"benign"`` is an ordinary message of the
same size to compare against. The shapes aim at what cbor2 does after reading the
bytes: tags it converts in superlinear time or in slow Python code, and map keys or
set elements whose Python hashes all collide, so that building the dict or set is
quadratic. The hostile ones are refused or left inert by
[`CborCodec`][wsframed.codecs.cbor.CborCodec] unless ``trusted_peer=True``.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator

__all__ = ["cbor_worst_case", "cbor_worst_cases", "tuple_hash_collisions"]

# CPython's hash of an int is the int modulo this prime (and -2 for -1).
MODULUS = (1 << 61) - 1
_MASK = (1 << 64) - 1
# CPython's tuple hash (xxHash-based, Objects/tupleobject.c), which is invertible.
_XXPRIME_1 = 11400714785074694791
_XXPRIME_2 = 14029467366897019727
_XXPRIME_5 = 2870177450012600261


def head(major: int, argument: int) -> bytes:
    """The shortest CBOR head of ``major`` type with ``argument``."""
    if argument < 24:
        return bytes([major << 5 | argument])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * width):
            return bytes([major << 5 | info]) + argument.to_bytes(width, "big")
    raise ValueError(f"argument {argument} needs more than 64 bits")


def integer(value: int) -> bytes:
    """A CBOR integer: major type 0 or 1 within 64 bits, else a bignum (tag 2 or 3)."""
    if value >= 0:
        if value < 1 << 64:
            return head(0, value)
        return head(6, 2) + byte_string(value.to_bytes((value.bit_length() + 7) // 8, "big"))
    if -value - 1 < 1 << 64:
        return head(1, -value - 1)
    magnitude = -value - 1
    return head(6, 3) + byte_string(magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big"))


def byte_string(data: bytes) -> bytes:
    return head(2, len(data)) + data


def text(value: str) -> bytes:
    data = value.encode()
    return head(3, len(data)) + data


def tag(number: int, content: bytes) -> bytes:
    return head(6, number) + content


def array(items: list[bytes]) -> bytes:
    return head(4, len(items)) + b"".join(items)


def _fill(size: int, opener: int, units: Iterator[bytes], per_entry: int = 1) -> bytes:
    """A container of major type ``opener`` holding as many ``units`` as fit in ``size``.

    ``per_entry`` is how many units make one entry (2 for a map: key, value).
    """
    body: list[bytes] = []
    used = 9  # the longest head
    for unit in units:
        if used + len(unit) > size:
            break
        body.append(unit)
        used += len(unit)
    del body[len(body) - len(body) % per_entry :]
    return head(opener, len(body) // per_entry) + b"".join(body)


def _bignum_of(size: int, rng: random.Random) -> int:
    """A random integer of exactly ``size`` bytes."""
    return rng.getrandbits(8 * size) | 1 << (8 * size - 1)


def _rotate_right(value: int) -> int:
    return (value >> 31 | value << 33) & _MASK


def _tuple_lane(value: int) -> int:
    return hash(value) & _MASK


def tuple_hash_collisions() -> Iterator[tuple[int, int]]:
    """Pairs ``(a, b)`` of 64-bit integers whose tuples ``(a, b)`` all hash the same.

    CPython hashes a tuple by folding each element's hash into an accumulator with
    steps that are each invertible, so for any first element the second one's hash,
    and then (three times in four) an integer with that hash, can be solved for.
    """
    target = hash((0, 0)) & _MASK
    # Undo the final step (add the length mix), then the last multiply and rotate.
    before_length = (target - (2 ^ (_XXPRIME_5 ^ 3527539))) & _MASK
    wanted = _rotate_right(before_length * pow(_XXPRIME_1, -1, 1 << 64) & _MASK)
    inverse_2 = pow(_XXPRIME_2, -1, 1 << 64)
    a = 0
    while True:
        a += 1
        accumulator = (_XXPRIME_5 + _tuple_lane(a) * _XXPRIME_2) & _MASK
        accumulator = (accumulator << 31 | accumulator >> 33) & _MASK
        accumulator = accumulator * _XXPRIME_1 & _MASK
        lane = (wanted - accumulator) * inverse_2 & _MASK
        b = lane if lane < MODULUS else lane - (1 << 64)
        if -MODULUS < b < MODULUS and b != -1 and hash(b) & _MASK == lane:
            yield a, b


def _float_collisions() -> Iterator[bytes]:
    """Float and integer keys in chains of about 42 with one hash each.

    The hash of ``m * 2**e`` is ``m * 2**(e mod 61)`` modulo 2**61 - 1, so the
    floats ``m * 2**(r + 61 j)`` share a hash for every j in the float range (about
    34 of them), and so do the 64-bit integers equal to it modulo 2**61 - 1 (8 more).
    A bounded chain: dict insertion stays linear, with a larger constant.
    """
    mantissa = 1
    while True:
        mantissa += 2
        for shift in range(0, 61, 7):
            value = mantissa << shift
            for power in range(-17, 17):
                candidate = value * 2.0 ** (61 * power) if shift + 61 * power > -1074 else 0.0
                if candidate and candidate != float("inf"):
                    yield b"\xfb" + struct.pack(">d", candidate)
            residue = value % MODULUS
            for k in range(8):
                if residue + k * MODULUS < 1 << 64:
                    yield head(0, residue + k * MODULUS)


def _headers(size: int) -> str:
    """MIME header lines ``Hk: v`` filling about ``size`` bytes."""
    lines: list[str] = []
    used = 0
    for k in _counting():
        line = f"H{k}: v\n"
        if used + len(line) > size:
            return "".join(lines)
        lines.append(line)
        used += len(line)
    raise AssertionError("unreachable")  # pragma: no cover


def _map_of(keys: Iterator[bytes]) -> Iterator[bytes]:
    for key in keys:
        yield key
        yield b"\xf6"  # null


def _counting(start: int = 1) -> Iterator[int]:
    k = start
    while True:
        yield k
        k += 1


def _shapes(size: int) -> dict[str, Callable[[], bytes]]:
    rng = random.Random(size)
    big = size - 16  # room for the heads around one bignum

    def tiny(unit: bytes) -> Callable[[], bytes]:
        return lambda: _fill(size, 4, iter(lambda: unit, None))

    def benign() -> bytes:
        items = (
            head(5, 4)
            + text("id")
            + integer(i)
            + text("name")
            + text(f"item{i}")
            + text("v")
            + b"\xfb"
            + struct.pack(">d", i / 7)
            + text("ok")
            + b"\xf5"
            for i in _counting()
        )
        return _fill(size, 4, items)

    return {
        "benign": benign,
        # Tags converted in superlinear time or by slow Python code.
        "decimal_bignum": lambda: tag(4, array([integer(0), integer(_bignum_of(big, rng))])),
        "bigfloat_bignum": lambda: tag(5, array([integer(-3), integer(_bignum_of(big, rng))])),
        "bigfloat_bignum_exponent": lambda: tag(
            5, array([integer(_bignum_of(big, rng)), integer(1)])
        ),
        "rational_bignums": lambda: tag(
            30, array([integer(_bignum_of(big // 2, rng)), integer(_bignum_of(big // 2, rng))])
        ),
        "decimals_at_bound": lambda: _fill(
            size,
            4,
            (tag(4, array([integer(-5), integer(_bignum_of(1024, rng))])) for _ in _counting()),
        ),
        "rationals_at_bound": lambda: _fill(
            size,
            4,
            (
                tag(30, array([integer(_bignum_of(1024, rng)), integer(_bignum_of(1024, rng))]))
                for _ in _counting()
            ),
        ),
        "decimals_tiny": tiny(b"\xc4\x82\x00\x00"),
        "regex_groups": lambda: tag(35, text("(a)" * ((size - 16) // 3))),
        "regexes_distinct": lambda: _fill(size, 4, (tag(35, text(f"a{k}")) for k in _counting())),
        "mime_headers": lambda: tag(36, text(_headers(size - 24) + "\nbody")),
        "mimes_empty": tiny(b"\xd8\x24\x60"),
        "uuids": tiny(b"\xd8\x25\x50" + bytes(15) + b"\x01"),
        "ip_networks": tiny(bytes.fromhex("d90105 a1 447f000001 1820")),
        "ip_addresses": tiny(bytes.fromhex("d834 447f000001")),
        "bignums_tiny": tiny(b"\xc2\x40"),
        # References to one long string: decoded, one shared str; re-encoded or
        # printed, the whole string once per reference (refused by default).
        "string_refs": lambda: tag(
            256,
            head(4, (size - 16 - size // 2) // 3 + 1)
            + text("a" * (size // 2))
            + b"\xd8\x19\x00" * ((size - 16 - size // 2) // 3),
        ),
        "epoch_datetimes": tiny(b"\xc1\x1a\x5f\x5e\x10\x00"),
        "unknown_tags": tiny(b"\xc6\x00"),
        "empty_arrays": tiny(b"\x80"),
        # Map keys and set elements that all hash alike.
        "bignum_keys": lambda: _fill(
            size, 5, _map_of(integer(k * MODULUS) for k in _counting(1 << 8)), 2
        ),
        "tuple_keys": lambda: _fill(
            size,
            5,
            _map_of(array([integer(a), integer(b)]) for a, b in tuple_hash_collisions()),
            2,
        ),
        "uuid_keys": lambda: _fill(
            size,
            5,
            _map_of(tag(37, byte_string((k * MODULUS).to_bytes(16, "big"))) for k in _counting()),
            2,
        ),
        "fraction_keys": lambda: _fill(
            size,
            5,
            _map_of(tag(30, array([integer(MODULUS), integer(d)])) for d in _counting(2)),
            2,
        ),
        "decimal_keys": lambda: _fill(
            size,
            5,
            _map_of(tag(4, array([integer(e), integer(MODULUS)])) for e in _counting(-40_000)),
            2,
        ),
        "set_of_bignums": lambda: tag(
            258, _fill(size - 3, 4, (integer(k * MODULUS) for k in _counting(1 << 8)))
        ),
        "float_keys": lambda: _fill(size, 5, _map_of(_float_collisions()), 2),
        "int_keys": lambda: _fill(
            size,
            5,
            _map_of(head(0, h + k * MODULUS) for h in _counting(1 << 20) for k in range(8)),
            2,
        ),
    }


def cbor_worst_cases(size: int) -> dict[str, bytes]:
    """Every worst-case frame, one CBOR item of at most ``size`` bytes each, by name.

    ``"benign"`` is an array of small maps (``{"id", "name", "v", "ok"}``) of the same
    size, the baseline the others are compared with. Deterministic for a given size.
    """
    return {name: make() for name, make in _shapes(size).items()}


def cbor_worst_case(name: str, size: int) -> bytes:
    """The one frame ``name`` of [`cbor_worst_cases`][tests.cbor_worst_cases.cbor_worst_cases]."""
    return _shapes(size)[name]()
