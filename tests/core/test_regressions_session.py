"""Regressions in the client session, each named for the rule it keeps."""

from __future__ import annotations

from sansws import ServerConnection, State
from sansws.session import Attempt, ClientSession


def _accepted_then(session: ClientSession, text: str, *, close: bool) -> tuple[Attempt, bytes]:
    """An attempt, and a server's 101 response followed by more frames."""
    attempt = session.start(0.0)
    server = ServerConnection()
    server.receive_data(attempt.connection.data_to_send())
    server.accept()
    server.send_text(text)
    if close:
        server.close(1000, "bye")
    return attempt, server.data_to_send()


def test_an_accepted_handshake_is_open_even_if_a_close_came_in_the_same_bytes() -> None:
    session = ClientSession("ws://example.com/")
    attempt, data = _accepted_then(session, "hello", close=True)
    attempt.connection.receive_data(data)
    assert attempt.connection.state is State.CLOSED
    # The handshake succeeded: the message and the close belong to the
    # application, not to the opening.
    assert session.outcome(attempt, 0.0) is None


def test_an_accepted_handshake_is_open_even_if_a_frame_in_the_same_bytes_broke_a_limit() -> None:
    session = ClientSession("ws://example.com/", max_message_size=3)
    attempt, data = _accepted_then(session, "too long", close=False)
    attempt.connection.receive_data(data)
    assert attempt.connection.close_code == 1009
    assert session.outcome(attempt, 0.0) is None
