"""sansws.options: every option described once (default, check, scopes,
meaning), what type checkers see (the TypedDicts), and settle(), which
checks every value before any I/O with errors that name the caller."""

from __future__ import annotations

import math
import pathlib
from typing import Any

import pytest

from sansws import ClientConnection, ServerConnection
from sansws.extensions.permessage_deflate import PerMessageDeflate
from sansws.headers import Headers
from sansws.options import (
    CLIENT_CONNECTION,
    CONNECT,
    OPTIONS,
    SERVE,
    SERVER_CONNECTION,
    ClientConnectionOptions,
    ClientOptions,
    Option,
    ServerConnectionOptions,
    ServerOptions,
    names,
    settle,
)

SCOPES = [CLIENT_CONNECTION, SERVER_CONNECTION, CONNECT, SERVE]


# -------------------------------------------------------------- the table


@pytest.mark.parametrize("option", OPTIONS.values(), ids=OPTIONS.keys())
def test_every_default_passes_its_own_check(option: Option) -> None:
    option.check(option.name, option.default)


@pytest.mark.parametrize("option", OPTIONS.values(), ids=OPTIONS.keys())
def test_every_option_is_documented_and_accepted_somewhere(option: Option) -> None:
    assert option.doc.strip()
    assert "  " not in option.doc  # folded into one line for the docs
    assert option.scopes
    assert option.scopes <= set(SCOPES)


@pytest.mark.parametrize(
    ("typed_dict", "scope"),
    [
        (ClientConnectionOptions, CLIENT_CONNECTION),
        (ServerConnectionOptions, SERVER_CONNECTION),
        (ClientOptions, CONNECT),
        (ServerOptions, SERVE),
    ],
    ids=SCOPES,
)
def test_each_typed_dict_lists_exactly_the_options_of_its_scope(
    typed_dict: Any, scope: str
) -> None:
    # What a type checker accepts is what runs.
    keys = typed_dict.__required_keys__ | typed_dict.__optional_keys__
    assert keys == set(names(scope))


def test_names_are_in_documentation_order() -> None:
    assert list(names(CONNECT)) == [name for name in OPTIONS if CONNECT in OPTIONS[name].scopes]


def test_driver_options_are_not_connection_options() -> None:
    # max_queue, write_limit and unix_path only mean something to a driver.
    for name in ("max_queue", "write_limit", "unix_path"):
        assert name not in names(CLIENT_CONNECTION)
        assert name not in names(SERVER_CONNECTION)


# -------------------------------------------------------------- settle


@pytest.mark.parametrize("scope", SCOPES)
def test_settle_fills_in_every_default(scope: str) -> None:
    settled = settle({}, scope, "f()")
    assert settled == {name: OPTIONS[name].default for name in names(scope)}


def test_settle_keeps_the_given_values_and_the_defaults_of_the_others() -> None:
    settled = settle({"max_message_size": 5, "open_timeout": None}, CONNECT, "connect()")
    assert (settled["max_message_size"], settled["open_timeout"]) == (5, None)
    assert settled["ping_interval"] == OPTIONS["ping_interval"].default


def test_an_unknown_option_names_the_caller_and_suggests_the_close_match() -> None:
    with pytest.raises(TypeError) as info:
        settle({"max_mesage_size": 1}, CONNECT, "connect()")
    assert str(info.value) == (
        "connect() got an unexpected keyword argument 'max_mesage_size'"
        " (did you mean 'max_message_size'?)"
    )


def test_an_unknown_option_with_no_close_match_gets_no_suggestion() -> None:
    with pytest.raises(TypeError) as info:
        settle({"zzz": 1}, SERVE, "serve()")
    assert str(info.value) == "serve() got an unexpected keyword argument 'zzz'"


@pytest.mark.parametrize(
    ("name", "scope"),
    [
        ("backlog", CONNECT),
        ("max_redirects", SERVE),
        ("on_redirect", CLIENT_CONNECTION),
        ("stream_messages", CONNECT),
        ("origin", SERVER_CONNECTION),
        ("extra_headers", SERVER_CONNECTION),
        ("max_queue", SERVER_CONNECTION),
    ],
)
def test_an_option_of_another_scope_is_unknown(name: str, scope: str) -> None:
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{name}'"):
        settle({name: OPTIONS[name].default}, scope, "f()")


WRONG_TYPES: list[tuple[str, object]] = [
    ("max_message_size", "1024"),
    ("max_message_size", 1.5),
    ("ping_interval", "20"),
    ("max_headers", None),
    ("subprotocols", "chat"),
    ("subprotocols", ["chat", 1]),
    ("extra_headers", "X-A: b"),
    ("extra_headers", [("only a name",)]),
    ("origin", 1),
    ("user_agent", b"bytes"),
    ("extensions", 1),
    ("max_redirects", None),
    ("on_redirect", "not callable"),
    ("unix_path", 1),
    ("max_queue", "16"),
    ("backlog", 1.0),
]


@pytest.mark.parametrize(("name", "value"), WRONG_TYPES)
def test_a_value_of_the_wrong_type_is_a_type_error_naming_the_caller(
    name: str, value: object
) -> None:
    scope = SERVE if name == "backlog" else CONNECT
    with pytest.raises(TypeError) as info:
        settle({name: value}, scope, "connect()")
    assert str(info.value).startswith(f"connect(): {name} must be ")
    assert info.value.__cause__ is None  # the message says it all


OUT_OF_RANGE: list[tuple[str, object]] = [
    ("max_message_size", -1),
    ("max_header_line", 0),
    ("max_headers", 0),
    ("max_body_size", -1),
    ("max_redirects", -1),
    ("max_queue", 0),
    ("write_limit", -1),
    ("compression", "gzip"),
]


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
def test_a_value_out_of_range_is_a_value_error_naming_the_caller(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^connect\(\): {name} must be "):
        settle({name: value}, CONNECT, "connect()")


def test_subprotocols_given_as_one_string_is_a_type_error() -> None:
    # Not the subprotocols "c", "h", "a", "t".
    with pytest.raises(TypeError, match="subprotocols must be a sequence of str"):
        settle({"subprotocols": "chat"}, CONNECT, "connect()")


def test_sequences_are_settled_as_tuples() -> None:
    settled = settle({"subprotocols": ["chat"], "extensions": []}, CONNECT, "connect()")
    assert settled["subprotocols"] == ("chat",)
    assert settled["extensions"] == ()


@pytest.mark.parametrize("name", ["max_queue", "max_message_size", "write_limit", "backlog"])
def test_a_bool_is_not_an_int(name: str) -> None:
    with pytest.raises(TypeError, match=f"{name} must be an int"):
        settle({name: True}, SERVE, "serve()")


@pytest.mark.parametrize("value", [0, -1, 0.0, math.inf, math.nan])
def test_seconds_must_be_finite_and_positive(value: float) -> None:
    with pytest.raises(ValueError, match="ping_timeout must be a positive number of seconds"):
        settle({"ping_timeout": value}, CONNECT, "connect()")


def test_seconds_may_be_given_as_an_int_but_not_as_a_bool() -> None:
    assert settle({"close_timeout": 3}, CONNECT, "connect()")["close_timeout"] == 3.0
    assert type(settle({"close_timeout": 3}, CONNECT, "connect()")["close_timeout"]) is float
    with pytest.raises(TypeError, match="close_timeout must be a positive number"):
        settle({"close_timeout": True}, CONNECT, "connect()")


def test_flags_must_be_bools() -> None:
    with pytest.raises(TypeError, match="stream_messages must be True or False"):
        settle({"stream_messages": 1}, CLIENT_CONNECTION, "ClientConnection()")


def test_unix_path_accepts_a_pathlib_path() -> None:
    path = pathlib.Path("/run/app") / "ws.sock"
    assert settle({"unix_path": path}, CONNECT, "connect()")["unix_path"] == "/run/app/ws.sock"


@pytest.mark.parametrize(
    "headers",
    [{"X-A": "1"}, [("X-A", "1")], (("X-A", "1"),), Headers([("X-A", "1")])],
    ids=["mapping", "list of pairs", "tuple of pairs", "Headers"],
)
def test_extra_headers_normalize_to_headers(headers: Any) -> None:
    settled = settle({"extra_headers": headers}, CONNECT, "connect()")["extra_headers"]
    assert settled == Headers([("X-A", "1")])


@pytest.mark.parametrize(
    "compression", ["deflate", None, PerMessageDeflate()], ids=["deflate", "None", "settings"]
)
def test_compression_accepts_deflate_settings_or_none(compression: Any) -> None:
    assert settle({"compression": compression}, CONNECT, "connect()")["compression"] is compression


# -------------------------------------------------------------- the connections


def test_client_connection_refuses_an_unknown_option_naming_itself() -> None:
    with pytest.raises(TypeError, match=r"^ClientConnection\(\) got an unexpected keyword"):
        ClientConnection("ws://example.com/", max_queue=16)  # type: ignore[call-arg]


def test_client_connection_refuses_a_bad_value_naming_itself() -> None:
    with pytest.raises(ValueError, match=r"^ClientConnection\(\): max_message_size must be"):
        ClientConnection("ws://example.com/", max_message_size=-1)


def test_server_connection_refuses_an_unknown_option_naming_itself() -> None:
    with pytest.raises(TypeError) as info:
        ServerConnection(ping_intervall=1.0)  # type: ignore[call-arg]
    assert str(info.value) == (
        "ServerConnection() got an unexpected keyword argument 'ping_intervall'"
        " (did you mean 'ping_interval'?)"
    )


def test_server_connection_refuses_a_bad_type_naming_itself() -> None:
    with pytest.raises(TypeError, match=r"^ServerConnection\(\): subprotocols must be"):
        ServerConnection(subprotocols="chat")


class _ListeningSocket:
    """What serve() needs of a socket, without one."""

    def __init__(self, address: object = ("127.0.0.1", 8765)) -> None:
        self.address = address

    def accept(self) -> None: ...
    def getsockname(self) -> object:
        return self.address

    def listen(self, backlog: int) -> None: ...


def test_sock_must_be_a_socket_and_excludes_unix_path_and_reuse_port() -> None:
    given = _ListeningSocket()
    assert settle({"sock": given}, SERVE, "serve()")["sock"] is given
    with pytest.raises(TypeError, match="serve\\(\\): sock must be a bound socket or None"):
        settle({"sock": ("127.0.0.1", 8765)}, SERVE, "serve()")
    for other in ({"unix_path": "/tmp/x.sock"}, {"reuse_port": True}):
        with pytest.raises(ValueError, match="sock is already bound"):
            settle({"sock": given, **other}, SERVE, "serve()")
    with pytest.raises(TypeError, match="reuse_port must be True or False"):
        settle({"reuse_port": 1}, SERVE, "serve()")
    # Unbound (port 0, or a Unix socket without a path): listen() would bind
    # every interface on a random port.
    for unbound in (("0.0.0.0", 0), ("::", 0, 0, 0), ""):
        with pytest.raises(ValueError, match="sock must be bound"):
            settle({"sock": _ListeningSocket(unbound)}, SERVE, "serve()")


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [("max_size", "max_message_size"), ("additional_headers", "extra_headers")],
)
def test_websockets_option_names_point_to_ours(theirs: str, ours: str) -> None:
    with pytest.raises(TypeError, match=f"websockets' {theirs} is '{ours}' here"):
        settle({theirs: 1}, CONNECT, "connect()")
