"""ClientSession: attempts, redirects and the open-timeout budget, decided
without I/O (DESIGN.md: redirect rules live here and nowhere else)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from sansws import ClientConnection, ServerConnection, State
from sansws.errors import (
    InvalidStatus,
    InvalidURI,
    OpenTimeout,
    RedirectError,
    UnsafeHeader,
)
from sansws.events import Request
from sansws.session import Attempt, ClientSession

Answer = Callable[[ServerConnection, Request], None]


def answer(attempt: Attempt, respond: Answer) -> None:
    """Run one attempt's handshake against an in-memory server."""
    server = ServerConnection()
    (request,) = server.receive_data(attempt.connection.data_to_send())
    assert isinstance(request, Request)
    respond(server, request)
    attempt.connection.receive_data(server.data_to_send())


def redirect(status: int, location: str | None) -> Answer:
    headers = [] if location is None else [("Location", location)]
    return lambda server, request: server.reject(status, headers)


def accept(server: ServerConnection, request: Request) -> None:
    server.accept()


def sent_headers(attempt: Attempt) -> dict[str, str]:
    headers = attempt.connection.request_headers
    assert headers is not None
    return {name.lower(): value for name, value in headers}


def follow(session: ClientSession, attempt: Attempt, respond: Answer, now: float = 0.0) -> Attempt:
    answer(attempt, respond)
    next_attempt = session.outcome(attempt, now)
    assert next_attempt is not None
    return next_attempt


# -------------------------------------------------------------- first attempt


def test_the_first_attempt_targets_the_url_host_and_port() -> None:
    attempt = ClientSession("ws://example.com:8080/chat").start(5.0)
    assert (attempt.target.host, attempt.target.port) == ("example.com", 8080)
    assert attempt.target.tls is False
    assert attempt.target.server_hostname is None
    assert attempt.target.unix_path is None
    assert attempt.hops == 0
    assert attempt.redirected_by is None


def test_a_wss_url_asks_for_tls_with_the_host_as_server_name() -> None:
    attempt = ClientSession("wss://secure.example/").start(0.0)
    assert attempt.target.tls is True
    assert attempt.target.server_hostname == "secure.example"
    assert attempt.target.port == 443


def test_the_open_timeout_budget_starts_when_the_session_starts() -> None:
    session = ClientSession("ws://example.com/", open_timeout=7.0)
    assert session.deadline is None
    attempt = session.start(100.0)
    assert session.deadline == attempt.deadline == 107.0
    # The connection's own handshake timer gets what is left of the budget.
    assert attempt.connection.open_timeout == pytest.approx(7.0)


def test_no_open_timeout_means_no_deadline() -> None:
    attempt = ClientSession("ws://example.com/", open_timeout=None).start(3.0)
    assert attempt.deadline is None
    assert attempt.connection.open_timeout is None


def test_invalid_options_fail_before_any_io() -> None:
    with pytest.raises(InvalidURI):
        ClientSession("http://example.com/")
    with pytest.raises(UnsafeHeader):
        ClientSession("ws://example.com/", extra_headers=[("X-Bad", "a\r\nb")])
    with pytest.raises(ValueError, match="max_redirects"):
        ClientSession("ws://example.com/", max_redirects=-1)
    with pytest.raises(ValueError, match="open_timeout"):
        ClientSession("ws://example.com/", open_timeout=0)


def test_connection_options_reach_every_attempts_connection() -> None:
    session = ClientSession("ws://a.example/", subprotocols=["chat"], max_message_size=10)
    attempt = session.start(0.0)
    assert attempt.connection.max_message_size == 10
    nxt = follow(session, attempt, redirect(302, "/b"))
    assert nxt.connection.max_message_size == 10
    assert sent_headers(nxt)["sec-websocket-protocol"] == "chat"


def test_unix_path_is_the_target_of_every_attempt() -> None:
    session = ClientSession("ws://localhost/a", unix_path="/tmp/ws.sock")
    attempt = session.start(0.0)
    assert attempt.target.unix_path == "/tmp/ws.sock"
    nxt = follow(session, attempt, redirect(307, "/b"))
    assert nxt.target.unix_path == "/tmp/ws.sock"
    assert nxt.target.uri.resource_name == "/b"


# -------------------------------------------------------------- verdicts


def test_an_accepted_handshake_ends_the_session() -> None:
    session = ClientSession("ws://example.com/")
    attempt = session.start(0.0)
    answer(attempt, accept)
    assert session.outcome(attempt, 0.0) is None
    assert attempt.connection.state is State.OPEN


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_each_redirect_status_is_followed(status: int) -> None:
    session = ClientSession("ws://example.com/old")
    nxt = follow(session, session.start(0.0), redirect(status, "/new"))
    assert nxt.target.uri.resource_name == "/new"
    assert nxt.redirected_by == (status, "ws://example.com/new")
    assert nxt.hops == 1
    answer(nxt, accept)
    assert session.outcome(nxt, 0.0) is None


def test_on_redirect_reports_each_followed_hop_before_its_attempt() -> None:
    hops: list[tuple[int, str]] = []
    session = ClientSession("ws://a.example/0", on_redirect=lambda *hop: hops.append(hop))
    first = session.start(0.0)
    second = follow(session, first, redirect(301, "/1"))
    assert hops == [(301, "ws://a.example/1")]
    follow(session, second, redirect(307, "ws://b.example:8080/2?q"))
    assert hops == [(301, "ws://a.example/1"), (307, "ws://b.example:8080/2?q")]


def test_on_redirect_is_not_called_for_a_refused_redirect() -> None:
    hops: list[tuple[int, str]] = []
    session = ClientSession("ws://a.example/x", on_redirect=lambda *hop: hops.append(hop))
    attempt = session.start(0.0)
    answer(attempt, redirect(302, "/x"))
    with pytest.raises(RedirectError, match="loop"):
        session.outcome(attempt, 0.0)
    assert hops == []


@pytest.mark.parametrize("status", [300, 304, 305, 400, 401, 404, 500, 503])
def test_other_statuses_fail_with_invalid_status_at_once(status: int) -> None:
    session = ClientSession("ws://example.com/")
    attempt = session.start(0.0)
    answer(attempt, redirect(status, "/elsewhere"))
    with pytest.raises(InvalidStatus) as info:
        session.outcome(attempt, 0.0)
    assert info.value.status == status


def test_a_rejection_body_is_kept_for_the_error_message() -> None:
    session = ClientSession("ws://example.com/")
    attempt = session.start(0.0)
    answer(attempt, lambda server, request: server.reject(404, body=b"No such\n  endpoint\n"))
    with pytest.raises(InvalidStatus) as info:
        session.outcome(attempt, 0.0)
    assert info.value.body == b"No such\n  endpoint\n"


@pytest.mark.parametrize("location", [None, ""])
def test_a_redirect_without_a_usable_location_fails_at_once(location: str | None) -> None:
    session = ClientSession("ws://example.com/")
    attempt = session.start(0.0)
    answer(attempt, redirect(302, location))
    with pytest.raises(RedirectError, match="without a Location") as info:
        session.outcome(attempt, 0.0)
    assert info.value.status == 302


@pytest.mark.parametrize("location", ["ftp://example.com/x", "mailto:someone@example.com"])
def test_a_redirect_to_another_scheme_fails(location: str) -> None:
    session = ClientSession("ws://example.com/")
    attempt = session.start(0.0)
    answer(attempt, redirect(302, location))
    with pytest.raises(RedirectError, match="cannot follow") as info:
        session.outcome(attempt, 0.0)
    assert info.value.location == location


@pytest.mark.parametrize(
    ("base", "location", "expected"),
    [
        ("ws://a.example/x/y", "z", "ws://a.example/x/z"),
        ("ws://a.example/x/y", "../z?q=1", "ws://a.example/z?q=1"),
        ("ws://a.example/x", "?room=2", "ws://a.example/x?room=2"),
        ("ws://a.example:8080/x", "/root", "ws://a.example:8080/root"),
        ("ws://a.example/x", "//b.example:9000/p", "ws://b.example:9000/p"),
        ("wss://a.example/x", "//b.example/p", "wss://b.example/p"),
        ("ws://a.example/x", "http://b.example/p", "ws://b.example/p"),
        ("ws://a.example/x", "https://b.example/p", "wss://b.example/p"),
        ("ws://a.example/x", "wss://b.example/p", "wss://b.example/p"),
        ("ws://[::1]:8000/x", "/y", "ws://[::1]:8000/y"),
    ],
)
def test_relative_and_absolute_locations_resolve_against_the_request_url(
    base: str, location: str, expected: str
) -> None:
    session = ClientSession(base)
    nxt = follow(session, session.start(0.0), redirect(302, location))
    assert str(nxt.target.uri) == expected


def test_a_redirect_to_wss_switches_on_tls() -> None:
    session = ClientSession("ws://a.example/")
    nxt = follow(session, session.start(0.0), redirect(301, "wss://a.example/"))
    assert nxt.target.tls is True
    assert nxt.target.server_hostname == "a.example"
    assert nxt.target.port == 443


@pytest.mark.parametrize("location", ["ws://a.example/x", "http://a.example/x"])
def test_a_redirect_from_wss_to_ws_is_refused(location: str) -> None:
    session = ClientSession("wss://a.example/")
    attempt = session.start(0.0)
    answer(attempt, redirect(302, location))
    with pytest.raises(RedirectError, match="insecure"):
        session.outcome(attempt, 0.0)


def test_at_most_max_redirects_hops_are_followed() -> None:
    session = ClientSession("ws://a.example/0", max_redirects=3)
    attempt = session.start(0.0)
    for hop in range(1, 4):
        attempt = follow(session, attempt, redirect(302, f"/{hop}"))
        assert attempt.hops == hop
    answer(attempt, redirect(302, "/4"))
    with pytest.raises(RedirectError, match="too many redirects"):
        session.outcome(attempt, 0.0)


def test_max_redirects_zero_follows_none() -> None:
    session = ClientSession("ws://a.example/", max_redirects=0)
    attempt = session.start(0.0)
    answer(attempt, redirect(302, "/b"))
    with pytest.raises(RedirectError, match="too many redirects"):
        session.outcome(attempt, 0.0)


def test_a_redirect_to_itself_is_a_loop() -> None:
    session = ClientSession("ws://a.example/x")
    attempt = session.start(0.0)
    answer(attempt, redirect(302, "/x"))
    with pytest.raises(RedirectError, match="loop"):
        session.outcome(attempt, 0.0)


def test_a_longer_redirect_loop_is_detected_when_it_closes() -> None:
    session = ClientSession("ws://a.example/x", max_redirects=50)
    b = follow(session, session.start(0.0), redirect(302, "ws://b.example/y"))
    c = follow(session, b, redirect(302, "ws://c.example/z"))
    answer(c, redirect(302, "ws://a.example/x"))
    with pytest.raises(RedirectError, match="loop"):
        session.outcome(c, 0.0)


def test_credentials_are_dropped_when_a_redirect_changes_origin() -> None:
    session = ClientSession(
        "ws://user:secret@a.example/",
        extra_headers=[("Authorization", "Bearer t"), ("Cookie", "id=1"), ("X-Trace", "7")],
    )
    first = session.start(0.0)
    assert sent_headers(first)["authorization"] == "Bearer t"
    other = follow(session, first, redirect(302, "ws://b.example/"))
    headers = sent_headers(other)
    assert "authorization" not in headers
    assert "cookie" not in headers
    assert headers["x-trace"] == "7"


@pytest.mark.parametrize("location", ["ws://a.example:81/", "wss://a.example/"])
def test_a_different_port_or_scheme_is_another_origin(location: str) -> None:
    session = ClientSession("ws://a.example/", extra_headers=[("Cookie", "id=1")])
    nxt = follow(session, session.start(0.0), redirect(302, location))
    assert "cookie" not in sent_headers(nxt)


def test_credentials_stay_within_the_same_origin() -> None:
    session = ClientSession("ws://user:secret@a.example/", extra_headers=[("Cookie", "id=1")])
    nxt = follow(session, session.start(0.0), redirect(302, "/elsewhere"))
    headers = sent_headers(nxt)
    assert headers["cookie"] == "id=1"
    expected = "Basic " + base64.b64encode(b"user:secret").decode()
    assert headers["authorization"] == expected


def test_a_cross_origin_redirect_over_a_unix_socket_is_refused() -> None:
    session = ClientSession("ws://localhost/", unix_path="/tmp/ws.sock")
    attempt = session.start(0.0)
    answer(attempt, redirect(302, "ws://elsewhere.example/"))
    with pytest.raises(RedirectError, match="Unix socket"):
        session.outcome(attempt, 0.0)


# -------------------------------------------------------------- the budget


def test_each_redirect_hop_gets_only_what_is_left_of_the_budget() -> None:
    session = ClientSession("ws://a.example/", open_timeout=10.0)
    attempt = session.start(100.0)
    nxt = follow(session, attempt, redirect(302, "/b"), now=104.0)
    assert nxt.deadline == 110.0
    assert nxt.connection.open_timeout == pytest.approx(6.0)


def test_a_redirect_after_the_budget_is_spent_fails_with_open_timeout() -> None:
    session = ClientSession("ws://a.example/", open_timeout=10.0)
    attempt = session.start(100.0)
    answer(attempt, redirect(302, "/b"))
    with pytest.raises(OpenTimeout):
        session.outcome(attempt, 110.0)


def test_a_transport_step_at_the_deadline_fails_with_the_sessions_open_timeout() -> None:
    session = ClientSession("ws://a.example/", open_timeout=2.0)
    session.start(0.0)
    error = session.timed_out()
    assert isinstance(error, OpenTimeout)
    assert str(error) == "timed out opening ws://a.example/ after 2.0 seconds"


def test_a_silent_server_fails_with_open_timeout_from_the_connection_timer() -> None:
    session = ClientSession("ws://a.example/", open_timeout=5.0)
    attempt = session.start(50.0)
    connection = attempt.connection
    connection.data_to_send()
    connection.handle_timeout(50.0)  # arms the handshake timer
    assert connection.next_deadline() == pytest.approx(55.0)
    connection.handle_timeout(55.0)
    with pytest.raises(OpenTimeout):
        session.outcome(attempt, 55.0)


def test_an_invalid_handshake_response_fails_with_its_handshake_error() -> None:
    session = ClientSession("ws://a.example/")
    attempt = session.start(0.0)
    attempt.connection.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    with pytest.raises(Exception, match="Upgrade") as info:
        session.outcome(attempt, 0.0)
    assert type(info.value).__name__ == "InvalidHeader"


def test_outcome_before_the_handshake_ended_is_a_usage_error() -> None:
    session = ClientSession("ws://a.example/")
    attempt = session.start(0.0)
    with pytest.raises(ValueError, match="before the handshake ended"):
        session.outcome(attempt, 0.0)


def test_each_attempt_builds_exactly_one_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    # Options are validated by building the first attempt's connection up
    # front; no connection is built only to be thrown away.
    built: list[object] = []
    real = ClientConnection._settled.__func__  # type: ignore[attr-defined]

    def counting(cls: type[ClientConnection], *args: Any) -> ClientConnection:
        connection: ClientConnection = real(cls, *args)
        built.append(connection)
        return connection

    monkeypatch.setattr(ClientConnection, "_settled", classmethod(counting))
    session = ClientSession("ws://a.example/", open_timeout=4.0)
    attempt = session.start(10.0)
    assert built == [attempt.connection]
    assert attempt.connection.next_deadline() == pytest.approx(14.0)
    follow(session, attempt, redirect(302, "/b"), now=11.0)
    assert len(built) == 2
