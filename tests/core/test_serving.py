"""sansws.serving: a server's lifecycle (admitting, shutting down, being
done), the endpoint and procedure of each accepted connection, and the bind
plan, decided once for every driver."""

from __future__ import annotations

import logging
import socket
from typing import Any

from core_harness import QUIET, URL

from sansws import ClientConnection, ServerConnection, State, ops
from sansws.endpoint import Close, Wait
from sansws.events import Accepted, Request
from sansws.options import SERVE, settle
from sansws.serving import ACCEPT_RETRY_DELAY, ServerState, accept_failed, bind_plan, with_port


class Conn:
    """A driver's connection, as far as the server state cares."""

    def __init__(self, state: State = State.OPEN) -> None:
        self.state = state


def handler(connection: object) -> None:
    pass  # pragma: no cover - never called here


def server_state(**options: Any) -> ServerState[Conn]:
    return ServerState(settle(options, SERVE, "serve()"), handler=handler)


# -------------------------------------------------------------- the lifecycle


def test_admit_tracks_a_connection_until_it_is_discarded() -> None:
    state = server_state()
    conn = Conn()
    assert state.admit(conn)
    assert state.connections == {conn}
    assert state.discard(conn) is False  # not shutting down: not done
    assert state.connections == set()


def test_a_connection_accepted_while_shutting_down_is_refused() -> None:
    state = server_state()
    state.shutdown()
    conn = Conn()
    assert state.admit(conn) is False
    assert state.connections == set()
    assert state.shutdown() == []  # it was never tracked


def test_shutdown_hands_back_the_connections_once() -> None:
    state = server_state()
    first, second = Conn(), Conn(State.CONNECTING)
    state.admit(first)
    state.admit(second)
    assert not state.shutting_down
    assert set(state.shutdown()) == {first, second}
    assert state.shutting_down
    assert state.shutdown() == []  # a second shutdown has nothing left to end


def test_the_server_is_done_once_it_shut_down_and_every_connection_ended() -> None:
    state = server_state()
    conn = Conn()
    state.admit(conn)
    assert not state.done  # serving
    state.shutdown()
    assert not state.done  # a connection is still ending
    assert state.discard(conn) is True
    assert state.done


def test_a_server_without_connections_is_done_as_soon_as_it_shuts_down() -> None:
    state = server_state()
    assert not state.done
    state.shutdown()
    assert state.done


def test_connections_lists_only_open_ones() -> None:
    # Not those still in their opening handshake, nor those closing.
    state = server_state()
    conns = {s: Conn(s) for s in (State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED)}
    for conn in conns.values():
        state.admit(conn)
    assert state.connections == {conns[State.OPEN]}


# -------------------------------------------------------------- each connection


def test_endpoint_builds_a_server_endpoint_with_the_servers_settings() -> None:
    state = server_state(
        **{**QUIET, "open_timeout": 3.0},
        max_message_size=5,
        subprotocols=["chat"],
        server_header=None,
        write_limit=100,
    )
    endpoint = state.endpoint(7.0)
    connection = endpoint.connection
    assert isinstance(connection, ServerConnection)
    assert connection.max_message_size == 5
    assert not connection.stream_messages  # drivers deliver whole messages
    assert endpoint.write_mark.high == 100
    client = ClientConnection(URL, **{**QUIET, "subprotocols": ["chat"]})
    endpoint.receive_data(client.data_to_send(), 7.0)
    endpoint.answer(None, 7.0)
    (accepted,) = client.receive_data(endpoint.actions(7.0).write)
    assert isinstance(accepted, Accepted)
    assert accepted.subprotocol == "chat"
    assert accepted.headers.get("Server") is None


def test_endpoint_reads_pause_at_the_servers_max_queue() -> None:
    state = server_state(**QUIET, max_queue=2)
    endpoint = state.endpoint(0.0)
    client = ClientConnection(URL, **QUIET)
    endpoint.receive_data(client.data_to_send(), 0.0)
    endpoint.answer(None, 0.0)
    client.receive_data(endpoint.actions(0.0).write)
    client.send_text("a")
    client.send_text("b")
    endpoint.receive_data(client.data_to_send(), 0.0)
    assert endpoint.actions(0.0).read is False


def test_endpoint_arms_the_open_timeout_from_the_accept() -> None:
    state = server_state(open_timeout=3.0)
    endpoint = state.endpoint(7.0)
    assert endpoint.open_deadline == 10.0
    assert endpoint.actions(7.0).deadline == 10.0


def test_serve_wires_the_procedure_with_the_servers_extra_headers() -> None:
    state: ServerState[Conn] = ServerState(
        settle({**QUIET, "extra_headers": {"X-Served-By": "sansws"}}, SERVE, "serve()"),
        handler=handler,
    )
    endpoint = state.endpoint(0.0)
    procedure = state.serve(endpoint, "conn", lambda: 0.0)
    assert next(procedure) == ops.WaitFor(Wait.REQUEST)
    client = ClientConnection(URL, **QUIET)
    endpoint.receive_data(client.data_to_send(), 0.0)
    assert procedure.send(True) == ops.Call(handler, ("conn",))
    (accepted,) = client.receive_data(endpoint.actions(0.0).write)
    assert isinstance(accepted, Accepted)
    assert accepted.headers["X-Served-By"] == "sansws"
    procedure.close()  # the handler interrupted: the connection is aborted
    assert endpoint.actions(0.0).close is Close.ABORT


def test_serve_wires_the_procedure_with_tls_and_process_request() -> None:
    def process_request(connection: object, request: Request) -> None:
        pass  # pragma: no cover - never called here

    state: ServerState[Conn] = ServerState(
        settle(QUIET, SERVE, "serve()"),
        handler=handler,
        process_request=process_request,
        tls=True,
    )
    endpoint = state.endpoint(0.0)
    procedure = state.serve(endpoint, "conn", lambda: 0.0)
    assert next(procedure) == ops.StartTLS(None)
    assert procedure.send(True) == ops.WaitFor(Wait.REQUEST)
    endpoint.receive_data(ClientConnection(URL, **QUIET).data_to_send(), 0.0)
    call = procedure.send(True)
    assert isinstance(call, ops.Call)
    assert call.function is process_request
    assert call.args == ("conn", endpoint.request)
    procedure.close()


# -------------------------------------------------------------- binding


def info(family: int, address: tuple[Any, ...], proto: int = 6) -> Any:
    return (family, socket.SOCK_STREAM, proto, "", address)


def test_bind_plan_keeps_each_distinct_address_once_in_the_resolvers_order() -> None:
    v4 = info(socket.AF_INET, ("127.0.0.1", 8000))
    v6 = info(socket.AF_INET6, ("::1", 8000, 0, 0))
    other = info(socket.AF_INET, ("10.0.0.1", 8000))
    v4_again = info(socket.AF_INET, ("127.0.0.1", 8000), proto=0)
    assert bind_plan([v6, v4, v4_again, other, v6]) == [v6, v4, other]


def test_bind_plan_of_nothing_is_nothing() -> None:
    assert bind_plan([]) == []


def test_with_port_replaces_the_port_of_an_ipv4_address() -> None:
    assert with_port(("127.0.0.1", 0), 8080) == ("127.0.0.1", 8080)


def test_with_port_keeps_the_flow_info_and_scope_of_an_ipv6_address() -> None:
    assert with_port(("fe80::1", 0, 5, 2), 8080) == ("fe80::1", 8080, 5, 2)


# -------------------------------------------------------------- accepting


def test_a_failed_accept_is_reported_at_error_and_retried() -> None:
    report = accept_failed(OSError(24, "Too many open files"))
    assert report.level == logging.ERROR
    assert "Too many open files" in report.message
    assert f"retrying in {ACCEPT_RETRY_DELAY} s" in report.message
    assert report.error is None  # no traceback: the server keeps serving
