"""Shared pieces of the fuzz suite: the hypothesis settings chosen by ``VH_FUZZ``, the example database,
seeds taken from the sample apps, and mutation strategies for bytes and text.

``VH_FUZZ`` unset (or ``ci``): a short run that keeps ``tests/fuzz`` well under a minute.
``VH_FUZZ=long``: many examples per target and no deadline (``VH_FUZZ_EXAMPLES`` overrides the count).
Failures found are saved in ``.hypothesis/fuzz`` and replayed first on the next run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DATABASE = DirectoryBasedExampleDatabase(str(ROOT / ".hypothesis" / "fuzz"))
LONG = os.environ.get("VH_FUZZ", "").lower() == "long"
LONG_EXAMPLES = int(os.environ.get("VH_FUZZ_EXAMPLES", "20000"))

F = TypeVar("F", bound=Callable[..., Any])


def fuzz(ci_examples: int) -> Callable[[F], F]:
    """Settings for one fuzz target: ``ci_examples`` in the short run, ``LONG_EXAMPLES`` in the long one."""
    chosen = settings(
        max_examples=LONG_EXAMPLES if LONG else ci_examples,
        deadline=None,  # the machine is shared: time is bounded by limits in the product, not here
        database=DATABASE,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        print_blob=True,
    )

    def apply(test: F) -> F:
        wrapped: F = chosen(test)
        return wrapped

    return apply


def seed_files(pattern: str) -> list[tuple[str, bytes]]:
    """(path relative to examples/, bytes) of the sample apps' files matching ``pattern``, sorted."""
    found = sorted(EXAMPLES.glob(f"*/{pattern}"))
    assert found, f"no sample files match examples/*/{pattern}"
    return [(path.relative_to(EXAMPLES).as_posix(), path.read_bytes()) for path in found]


# -- byte mutation ------------------------------------------------------------------------------------

_INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xfe\xff", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"]


@st.composite
def mutated_bytes(draw: st.DrawFn, seeds: st.SearchStrategy[bytes], max_ops: int = 6) -> bytes:
    """A seed with a few byte-level mutations: flips, overwrites, inserts, deletes, duplicated spans,
    interesting values and truncation (the classic AFL mutators, driven by hypothesis so failures shrink)."""
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "dup", "magic", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "dup" and data:
            data[at:at] = data[at : at + draw(st.integers(1, 32))]
        elif op == "magic" and data:
            value = draw(st.sampled_from(_INTERESTING))
            data[at : at + len(value)] = value
        elif op == "truncate":
            del data[at:]
    return bytes(data)


# -- text mutation ------------------------------------------------------------------------------------


@st.composite
def mutated_text(draw: st.DrawFn, seeds: st.SearchStrategy[str], tokens: list[str], max_ops: int = 6) -> str:
    """A seed text with a few token-aware mutations: insert a dictionary token or random text, delete,
    duplicate or swap spans."""
    text = draw(seeds)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["token", "token", "text", "delete", "dup", "swap"]))
        at = draw(st.integers(0, len(text)))
        if op == "token":
            text = text[:at] + draw(st.sampled_from(tokens)) + text[at:]
        elif op == "text":
            text = text[:at] + draw(st.text(max_size=6)) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif op == "dup":
            text = text[:at] + text[at : at + draw(st.integers(1, 40))] + text[at:]
        elif op == "swap" and text:
            other = draw(st.integers(0, len(text)))
            lo, hi = sorted((at, other))
            size = min(draw(st.integers(1, 20)), hi - lo)
            text = (
                text[:lo]
                + text[hi : hi + size]
                + text[lo + size : hi]
                + text[lo : lo + size]
                + text[hi + size :]
            )
    return text


#: JSON-like values as a parser of outside documents meets them (with awkward numbers and strings).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
