"""WebSocket URIs (RFC 6455 section 3)."""

from __future__ import annotations

import dataclasses

import pytest

from sansws.errors import InvalidURI
from sansws.uri import WebSocketURI, parse_uri


@pytest.mark.parametrize(
    ("uri", "secure", "host", "port", "resource_name"),
    [
        ("ws://example.com", False, "example.com", 80, "/"),
        ("ws://example.com/", False, "example.com", 80, "/"),
        ("wss://example.com/chat", True, "example.com", 443, "/chat"),
        ("ws://example.com:8080/a/b?x=1&y=2", False, "example.com", 8080, "/a/b?x=1&y=2"),
        ("ws://example.com?x=1", False, "example.com", 80, "/?x=1"),
        ("WSS://EXAMPLE.COM/Path", True, "example.com", 443, "/Path"),
        ("ws://127.0.0.1:9000/", False, "127.0.0.1", 9000, "/"),
        ("ws://[::1]/", False, "::1", 80, "/"),
        ("wss://[2001:db8::1]:8443/x", True, "2001:db8::1", 8443, "/x"),
    ],
)
def test_valid_uris_are_parsed(
    uri: str, secure: bool, host: str, port: int, resource_name: str
) -> None:
    parsed = parse_uri(uri)
    assert (parsed.secure, parsed.host, parsed.port, parsed.resource_name) == (
        secure,
        host,
        port,
        resource_name,
    )
    assert parsed.user_info is None
    assert parsed.scheme == ("wss" if secure else "ws")


def test_default_ports_are_80_for_ws_and_443_for_wss() -> None:
    assert parse_uri("ws://h/").port == 80
    assert parse_uri("wss://h/").port == 443
    assert parse_uri("ws://h/").default_port
    assert parse_uri("wss://h:443/").default_port
    assert not parse_uri("ws://h:443/").default_port
    assert not parse_uri("wss://h:80/").default_port


def test_host_header_brackets_ipv6_and_adds_a_non_default_port() -> None:
    assert parse_uri("ws://[::1]/").host_header == "[::1]"
    assert parse_uri("ws://[::1]:81/").host_header == "[::1]:81"
    assert parse_uri("wss://h:444/").host_header == "h:444"
    assert parse_uri("wss://h/").host_header == "h"


def test_credentials_are_parsed_and_percent_decoded() -> None:
    assert parse_uri("ws://user:pass@h/").user_info == ("user", "pass")
    assert parse_uri("ws://us%40er:p%3Ass@h/").user_info == ("us@er", "p:ss")
    assert parse_uri("ws://user@h/").user_info == ("user", "")
    assert parse_uri("ws://user:@h/").user_info == ("user", "")


def test_str_of_a_uri_omits_credentials() -> None:
    assert str(parse_uri("wss://user:pass@example.com:8443/x?y")) == "wss://example.com:8443/x?y"
    assert str(parse_uri("ws://[::1]/")) == "ws://[::1]/"


def test_origin_identifies_scheme_host_and_port() -> None:
    assert parse_uri("ws://Example.com/a").origin == parse_uri("ws://example.com:80/b").origin
    assert parse_uri("ws://example.com/").origin != parse_uri("wss://example.com/").origin
    assert parse_uri("ws://example.com/").origin != parse_uri("ws://example.com:81/").origin


def test_non_ascii_path_and_query_are_percent_encoded() -> None:
    assert parse_uri("ws://h/é?q=ü").resource_name == "/%C3%A9?q=%C3%BC"
    # What is already encoded, and the delimiters, stay as they are.
    assert parse_uri("ws://h/a%20b/c;d?e=f&g=%2F").resource_name == "/a%20b/c;d?e=f&g=%2F"


def test_non_ascii_host_is_encoded_with_idna() -> None:
    assert parse_uri("ws://bücher.example/").host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://example.com/", "scheme"),
        ("https://example.com/", "scheme"),
        ("example.com/", "scheme"),
        ("ws:///path", "host is missing"),
        ("ws://", "host is missing"),
        ("ws://example.com/#", "fragment"),
        ("ws://example.com/#frag", "fragment"),
        ("ws://example.com/?q=1#frag", "fragment"),
        ("ws://example.com:99999/", "Port"),
        ("ws://example.com:port/", "Port"),
        ("ws://[::1/", "IPv6"),
        ("ws://example.com/a b", "whitespace"),
        ("ws://example.com/a\r\nHost: evil", "control"),
        ("ws://example.com/\x00", "control"),
        ("ws://" + "é" * 64 + ".com/", "cannot be encoded"),
    ],
)
def test_invalid_uris_are_refused(uri: str, reason: str) -> None:
    with pytest.raises(InvalidURI, match=reason) as info:
        parse_uri(uri)
    assert info.value.uri == uri
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{uri!r} isn't a valid WebSocket URI: ")


def test_parsed_uris_are_immutable() -> None:
    uri = parse_uri("ws://h/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        uri.host = "other"  # type: ignore[misc]
    assert uri == WebSocketURI(secure=False, host="h", port=80, resource_name="/")
