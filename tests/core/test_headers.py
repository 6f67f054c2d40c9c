"""The Headers class and the header grammar the handshake uses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansws.errors import UnsafeHeader
from sansws.headers import (
    Headers,
    build_extension_list,
    parse_extension_list,
    parse_token_list,
    validate_header,
)

PAIRS = [("Host", "example.com"), ("X-Id", "1"), ("x-id", "2")]


def test_headers_keep_order_and_case_and_iterate_as_pairs() -> None:
    headers = Headers(PAIRS)
    assert list(headers) == PAIRS
    assert headers.items() == tuple(PAIRS)
    assert len(headers) == 3
    assert headers[0] == ("Host", "example.com")
    assert list(headers[1:]) == PAIRS[1:]


def test_lookup_by_name_is_case_insensitive() -> None:
    headers = Headers(PAIRS)
    assert headers["HOST"] == "example.com"
    assert headers.get("host") == "example.com"
    assert headers.get_all("X-ID") == ["1", "2"]
    assert "hOsT" in headers
    assert "Missing" not in headers


_NAMES = st.sampled_from(["Host", "host", "HOST", "X-Id", "x-id", "Sec-WebSocket-Protocol", "a"])


@given(
    pairs=st.lists(st.tuples(_NAMES, st.text(max_size=3)), max_size=8),
    names=st.lists(_NAMES, max_size=6),
)
def test_lookups_agree_with_a_scan_of_every_pair_in_any_order(
    pairs: list[tuple[str, str]], names: list[str]
) -> None:
    headers = Headers(pairs)
    for name in names:
        expected = [value for key, value in pairs if key.lower() == name.lower()]
        found = headers.get_all(name)
        assert found == expected
        found.append("changed by the caller")  # a copy: later lookups unchanged
        assert headers.get_all(name) == expected
        assert (name in headers) is bool(expected)
        assert headers.get(name) == (", ".join(expected) if expected else None)


def test_repeated_headers_join_with_get_and_are_ambiguous_by_index() -> None:
    headers = Headers(PAIRS)
    assert headers.get("x-id") == "1, 2"
    with pytest.raises(KeyError):
        headers["X-Id"]


def test_missing_header() -> None:
    headers = Headers(PAIRS)
    assert headers.get("Missing") is None
    assert headers.get("Missing", "default") == "default"
    assert headers.get_all("Missing") == []
    with pytest.raises(KeyError):
        headers["Missing"]


def test_pair_membership() -> None:
    headers = Headers(PAIRS)
    assert ("X-Id", "1") in headers
    assert ("X-Id", "3") not in headers


def test_headers_from_a_mapping_an_iterable_or_headers() -> None:
    from_mapping = Headers({"A": "1", "B": "2"})
    assert list(from_mapping) == [("A", "1"), ("B", "2")]
    assert Headers(from_mapping) == from_mapping
    assert Headers(iter([("A", "1"), ("B", "2")])) == from_mapping
    assert list(Headers()) == []


def test_headers_are_immutable_hashable_and_compare_by_content() -> None:
    a, b = Headers(PAIRS), Headers(list(PAIRS))
    assert a == b
    assert hash(a) == hash(b)
    assert a != Headers(PAIRS[:1])
    assert a != PAIRS  # only Headers compare equal to Headers
    with pytest.raises(AttributeError):
        a.extra = 1  # type: ignore[attr-defined]
    assert repr(Headers([("A", "1")])) == "Headers([('A', '1')])"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Ok", "plain"),
        ("X-Ok", ""),
        ("X-Ok", "tab\there"),
        ("X-Ok", "café"),
        ("A!#$%&'*+-.^_`|~", "v"),
    ],
)
def test_safe_headers_pass_validation(name: str, value: str) -> None:
    validate_header(name, value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Bad", "a\rb"),
        ("X-Bad", "a\nb"),
        ("X-Bad", "a\x00b"),
        ("X-Bad", "\x1b[31m"),
        ("X-Bad", "日本"),
        ("X\rBad", "v"),
        ("X\nBad", "v"),
        ("X\x00Bad", "v"),
        ("X Bad", "v"),
        ("", "v"),
        ("Bad:", "v"),
    ],
)
def test_unsafe_headers_are_refused(name: str, value: str) -> None:
    with pytest.raises(UnsafeHeader) as info:
        validate_header(name, value)
    assert (info.value.name, info.value.value) == (name, value)
    assert repr(name) in str(info.value)


def test_token_lists_split_on_commas_across_lines_and_skip_empty_elements() -> None:
    assert parse_token_list(["a, b", " ,c,, ", "d"]) == ["a", "b", "c", "d"]
    assert parse_token_list([]) == []


def test_extension_list_parsing() -> None:
    values = ['permessage-deflate; client_max_window_bits; server_max_window_bits="10"', "x-b"]
    assert parse_extension_list(values) == [
        (
            "permessage-deflate",
            (("client_max_window_bits", None), ("server_max_window_bits", "10")),
        ),
        ("x-b", ()),
    ]
    assert parse_extension_list(["a ,, b ; p = 1"]) == [("a", ()), ("b", (("p", "1"),))]


@pytest.mark.parametrize(
    "value",
    ["bad name", "a; =1", "a; p=", "a; p=x y", 'a; p="unterminated', "a; p=@"],
)
def test_malformed_extension_lists_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="invalid extension"):
        parse_extension_list([value])


def test_separator_inside_quotes_is_an_invalid_value_not_a_split() -> None:
    # A quoted value may only hold token characters, so a quoted separator
    # is refused rather than silently splitting the element.
    with pytest.raises(ValueError, match="invalid extension parameter value"):
        parse_extension_list(['a; p="x,y"'])
    with pytest.raises(ValueError, match="invalid extension parameter value"):
        parse_extension_list(['a; p="x;y"'])


def test_build_extension_list_is_parsed_back() -> None:
    offers = [("x-a", (("p", "1"), ("q", None))), ("x-b", ())]
    text = build_extension_list(offers)
    assert text == "x-a; p=1; q, x-b"
    assert parse_extension_list([text]) == offers
