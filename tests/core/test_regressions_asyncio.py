"""Regressions found while building the asyncio driver."""

from __future__ import annotations

import pytest

from sansws.errors import OpenTimeout
from sansws.events import Closed
from sansws.session import TLS, ClientSession


def test_attempt_handshake_deadline_is_the_session_deadline_not_transport_time() -> None:
    # The open timeout is one budget across DNS, TCP, TLS and the handshake:
    # a transport that took most of it leaves the handshake only the rest.
    session = ClientSession("ws://example.com/", open_timeout=10.0)
    attempt = session.start(100.0)
    assert attempt.connection.next_deadline() == 110.0
    # The transport came up at 108: the first call the driver makes then
    # does not push the deadline back to 118.
    connection = attempt.connection
    assert connection.handle_timeout(108.0) == []
    assert connection.next_deadline() == 110.0
    events = connection.handle_timeout(110.0)
    assert isinstance(events[-1], Closed)
    assert isinstance(events[-1].error, OpenTimeout)


def test_redirect_attempt_handshake_deadline_is_the_session_deadline() -> None:
    session = ClientSession("ws://example.com/", open_timeout=10.0)
    first = session.start(0.0)
    first.connection.data_to_send()
    first.connection.receive_data(b"HTTP/1.1 302 Found\r\nLocation: /next\r\n\r\n")
    second = session.outcome(first, 4.0)
    assert second is not None
    assert second.connection.next_deadline() == 10.0


@pytest.mark.parametrize("tls", ["default", "custom"])
def test_tls_configuration_with_a_plain_ws_url_is_refused(tls: TLS) -> None:
    # An ssl argument with ws:// would be silently ignored: refuse it.
    with pytest.raises(ValueError, match="ws://"):
        ClientSession("ws://example.com/", tls=tls)
    ClientSession("ws://example.com/")
    ClientSession("wss://example.com/", tls=tls)
