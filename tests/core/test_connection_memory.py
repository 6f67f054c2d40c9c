"""What an open connection keeps in memory: a server holds many idle
connections, so nothing the opening handshake needed outlives it."""

from __future__ import annotations

import gc
import weakref

from core_harness import QUIET, request_bytes

from sansws import ServerConnection, State
from sansws.events import Request


def test_an_accepted_server_connection_no_longer_holds_the_http_parser() -> None:
    server = ServerConnection(**QUIET)
    (request,) = server.receive_data(request_bytes())
    assert isinstance(request, Request)
    parser = weakref.ref(server._handshake._h11)
    server.accept()
    assert server.state is State.OPEN
    gc.collect()
    assert parser() is None
    # What the application may still read about the handshake stays.
    assert server.request is request
    assert server.request_headers is request.headers
    assert server.response_headers is not None
