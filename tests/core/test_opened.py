"""ClientConnection.opened and ServerConnection.opened: connections that
start OPEN from an agreement reached elsewhere (an HTTP/2 or HTTP/3
extended CONNECT, a framework's own upgrade). The property suites of
tests/property run over both ways of opening; these are the examples."""

from __future__ import annotations

import pytest
from core_harness import QUIET, client_frame

from sansws import ClientConnection, ServerConnection, State
from sansws.endpoint import Close, Endpoint
from sansws.errors import NegotiationError, PayloadTooBig
from sansws.events import Closed, Message, Ping

DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"


def agreed_pair(**options: object) -> tuple[ClientConnection, ServerConnection]:
    server = ServerConnection.opened(offered_extensions=[DEFLATE_OFFER], **options)  # type: ignore[arg-type]
    header = server.extensions_header
    client = ClientConnection.opened(
        accepted_extensions=[header] if header else [], **options  # type: ignore[arg-type]
    )
    return client, server


def test_both_start_open_and_agree_on_compression() -> None:
    client, server = agreed_pair(subprotocol="chat")
    assert client.state is State.OPEN
    assert server.state is State.OPEN
    assert server.extensions_header is not None
    assert server.extensions_header.startswith("permessage-deflate")
    assert client.extensions == server.extensions
    assert (client.subprotocol, server.subprotocol) == ("chat", "chat")
    assert (client.request, client.response, server.request, server.response) == (None,) * 4


def test_messages_are_compressed_and_the_close_handshake_runs() -> None:
    client, server = agreed_pair()
    client.send_text("hello " * 1000)
    wire = client.data_to_send()
    assert len(wire) < 200  # compressed, and masked towards the server
    assert server.receive_data(wire) == [Message("hello " * 1000)]
    server.close(1000, "done")
    assert client.receive_data(server.data_to_send()) == [Closed(1000, "done", clean=True)]
    assert server.receive_data(client.data_to_send()) == [Closed(1000, "done", clean=True)]
    assert server.should_close_transport


def test_the_limits_and_timers_of_the_options_apply() -> None:
    client, server = agreed_pair(max_message_size=10, ping_interval=5.0, compression=None)
    assert server.extensions == ()
    server.handle_timeout(0.0)
    assert server.next_deadline() == 5.0
    server.handle_timeout(5.0)
    assert client.receive_data(server.data_to_send())[0] == Ping(server._keepalive_payload or b"")
    client.send_binary(b"x" * 11)
    *_, closed = server.receive_data(client.data_to_send())  # after the Pong
    assert isinstance(closed, Closed)
    assert closed.code == 1009
    assert isinstance(closed.error, PayloadTooBig)


def test_a_client_refuses_an_agreement_it_did_not_offer() -> None:
    with pytest.raises(NegotiationError):
        ClientConnection.opened(accepted_extensions=["x-unknown"])
    with pytest.raises(NegotiationError):
        ClientConnection.opened(accepted_extensions=["permessage-deflate"], compression=None)


def test_a_server_refuses_a_malformed_offer_and_ignores_unknown_ones() -> None:
    with pytest.raises(NegotiationError):
        ServerConnection.opened(offered_extensions=['permessage-deflate; x="'])
    server = ServerConnection.opened(offered_extensions=["x-unknown, permessage-deflate"])
    assert server.extensions_header is not None
    assert server.extensions_header.startswith("permessage-deflate")


def test_options_are_checked_as_for_the_constructors() -> None:
    with pytest.raises(TypeError, match=r"ServerConnection\.opened\(\)"):
        ServerConnection.opened(no_such_option=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="max_message_size"):
        ClientConnection.opened(max_message_size=-1)


def test_an_endpoint_closes_the_transport_by_the_same_rule_either_way() -> None:
    # A violation fails the connection: the transport is aborted, not
    # flushed, whether the connection did a handshake or started open.
    client = ClientConnection("ws://example.com/", **QUIET)
    handshaken = ServerConnection(**QUIET)
    handshaken.receive_data(client.data_to_send())
    handshaken.accept()
    verdicts = []
    for connection in (handshaken, ServerConnection.opened(**QUIET)):
        endpoint = Endpoint(connection, 0.0)
        endpoint.actions(0.0)
        endpoint.receive_data(client_frame(0x3), 0.0)  # a reserved opcode
        verdicts.append((connection.close_code, endpoint.actions(0.0).close))
    assert verdicts == [(1002, Close.ABORT), (1002, Close.ABORT)]
