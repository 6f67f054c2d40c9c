"""The procedures of sansws.ops (opening a client, sending, draining,
closing, finishing, serving), run by a fake runner that carries out their
effects in memory: the endpoint talks to a real peer connection, time is a
number the test moves, and faults are thrown in where a driver's would be."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from core_harness import QUIET, URL, parse_all, request_bytes

from sansws import ClientConnection, ServerConnection, State, ops
from sansws.endpoint import Close, Endpoint, Response, Wait
from sansws.errors import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
    LocalProtocolError,
    OpenTimeout,
)
from sansws.events import Accepted, Closed, Event, Message, Rejected, Request
from sansws.frames import Opcode
from sansws.session import ClientSession

Peer = ClientConnection | ServerConnection
Respond = Callable[[ServerConnection, Request], None]


class Clock:
    """The driver's clock: a number the test moves."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Wire:
    """One transport in memory: an endpoint, the peer connection at the other
    end (answering a handshake request with ``respond``), and what the driver
    did with the endpoint's actions. A ``slow`` wire keeps written bytes
    unwritten until a wait lets them through, as a full socket buffer does."""

    def __init__(
        self, endpoint: Endpoint, peer: Peer, respond: Respond | None = None, *, slow: bool = False
    ) -> None:
        self.endpoint, self.peer, self.respond, self.slow = endpoint, peer, respond, slow
        self.pending = b""  # written by the endpoint, not taken by the transport yet
        self.written = b""  # taken by the transport, delivered to the peer
        self.incoming = b""  # raw bytes to deliver, ahead of the peer's
        self.closes: list[Close] = []
        self.events: list[Event] = []  # the peer's
        self.peer_eof = False

    def apply(self, now: float) -> None:
        """Carry out the endpoint's actions, as every driver's runner does
        after each step of a procedure."""
        endpoint = self.endpoint
        actions = endpoint.actions(now)
        self.pending += actions.write
        if self.slow and actions.close is Close.KEEP:
            endpoint.unwritten(len(self.pending))
        else:
            self.flush()
        if actions.close is not Close.KEEP:
            self.closes.append(actions.close)
            endpoint.transport_closed(now)
            self.events += self.peer.receive_data(b"")

    def flush(self) -> None:
        data, self.pending = self.pending, b""
        if not data:
            return  # b"" would tell the peer the stream ended
        self.written += data
        events = self.peer.receive_data(data)
        self.events += events
        for event in events:
            if isinstance(event, Request) and self.respond is not None:
                assert isinstance(self.peer, ServerConnection)
                self.respond(self.peer, event)
        if self.slow:
            self.endpoint.unwritten(0)

    def pump(self, now: float) -> bool:
        """Move bytes one step (the endpoint's unwritten ones to the peer,
        the peer's to the endpoint); return whether anything moved."""
        if self.pending:
            self.flush()
            return True
        data, self.incoming = self.incoming + self.peer.data_to_send(), b""
        if data:
            self.endpoint.receive_data(data, now)
            return True
        if self.peer.should_close_transport and not self.peer_eof:
            self.peer_eof = True
            self.endpoint.receive_data(b"", now)
            return True
        return False


class Runner:
    """A driver's runner (see sansws.ops): send the result of each effect
    back into the procedure, or throw what it raised; apply the current
    wire's actions after every step. ``overrides`` carry out effects of a
    type in the test's own way; ``fail_at=(n, error)`` raises ``error``
    instead of carrying out the n-th effect."""

    def __init__(
        self,
        clock: Clock,
        wire: Wire | None = None,
        overrides: dict[type[Any], Callable[[Any], Any]] | None = None,
        fail_at: tuple[int, BaseException] | None = None,
    ) -> None:
        self.clock, self.wire, self.fail_at = clock, wire, fail_at
        self.wires = [] if wire is None else [wire]
        self.overrides = overrides or {}
        self.effects: list[ops.Effect] = []

    def attach(self, wire: Wire) -> None:
        self.wire = wire
        self.wires.append(wire)

    def run(self, procedure: ops.Procedure[Any]) -> Any:
        value: Any = None
        error: BaseException | None = None
        for _ in range(100):
            try:
                effect = procedure.send(value) if error is None else procedure.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                if self.wire is not None:
                    self.wire.apply(self.clock())
            self.effects.append(effect)
            try:
                value, error = self.perform(effect), None
            except BaseException as exc:
                value, error = None, exc
        raise AssertionError("the procedure did not end")

    def perform(self, effect: ops.Effect) -> Any:
        if self.fail_at is not None and self.fail_at[0] == len(self.effects) - 1:
            raise self.fail_at[1]
        override = self.overrides.get(type(effect))
        return self.default(effect) if override is None else override(effect)

    def default(self, effect: ops.Effect) -> Any:
        match effect:
            case ops.WaitFor(what=what, deadline=deadline):
                wire = self.wire
                assert wire is not None
                for _ in range(20):
                    if wire.endpoint.ready(what):
                        return True
                    if not wire.pump(self.clock()):
                        break
                    wire.apply(self.clock())
                assert deadline is not None, f"{what!r} would never be ready"
                self.clock.now = max(self.clock.now, deadline)
                return False
            case ops.NextFragment(source=AsyncIterator() as source):
                return complete(anext(source, ops.DONE))
            case ops.NextFragment(source=source):
                return next(source, ops.DONE)
            case ops.Call(function=function, args=args):
                result = function(*args)
                return complete(result) if hasattr(result, "__await__") else result
            case ops.StartTLS():
                return True
            case ops.Report():
                return None
        raise AssertionError(f"no default for {effect!r}")

    def reports(self) -> list[tuple[int, str, BaseException | None]]:
        return [(e.level, e.message, e.error) for e in self.effects if isinstance(e, ops.Report)]

    def waits(self) -> list[Wait]:
        return [e.what for e in self.effects if isinstance(e, ops.WaitFor)]


def complete(awaitable: Any) -> Any:
    """The result of an awaitable that never suspends."""
    steps = awaitable.__await__()
    try:
        steps.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the fake runner cannot suspend")


def state(endpoint: Endpoint) -> State:
    # A function, so that a type checker does not narrow the state across
    # the calls that change it.
    return endpoint.state


def client_wire(clock: Clock, *, slow: bool = False, **options: Any) -> Wire:
    """An OPEN client endpoint, its actions applied, and its server."""
    endpoint = Endpoint(ClientConnection(URL, **QUIET), clock(), **options)
    server = ServerConnection(**QUIET)
    wire = Wire(endpoint, server, accept)
    wire.apply(clock())
    wire.pump(clock())
    wire.apply(clock())
    assert state(endpoint) is State.OPEN
    wire.written, wire.events, wire.slow = b"", [], slow  # from here on
    return wire


def server_wire(clock: Clock, request: bytes | None = None, **options: Any) -> Wire:
    """A server endpoint accepted at ``clock()`` with a 10 s open timeout,
    and its client, whose request (or the raw ``request``) is on its way."""
    endpoint = Endpoint(ServerConnection(**{**QUIET, "open_timeout": 10.0, **options}), clock())
    client = ClientConnection(URL, **QUIET)
    wire = Wire(endpoint, client)
    if request is not None:
        client.data_to_send()
        wire.incoming = request
    return wire


def sent_frames(wire: Wire) -> list[tuple[int, bytes, bool]]:
    """(opcode, payload, fin) of every frame the endpoint wrote."""
    return [(frame.opcode, frame.payload, frame.fin) for frame, _ in parse_all(wire.written)]


def closed_events(wire: Wire) -> list[Closed]:
    return [event for event in wire.events if isinstance(event, Closed)]


def redirect_to(location: str) -> Respond:
    return lambda server, request: server.reject(302, [("Location", location)])


def accept(server: ServerConnection, request: Request) -> None:
    server.accept()


# -------------------------------------------------------------- open_client


def opener(runner: Runner, respond: Callable[[str], Respond]) -> Callable[[Any], str]:
    """An OpenTransport that connects each attempt to a new in-memory server
    answering ``respond(path)``."""

    def open_transport(effect: ops.OpenTransport) -> str:
        uri = effect.target.uri
        server = ServerConnection(**QUIET)
        runner.attach(Wire(effect.endpoint, server, respond(uri.resource_name)))
        return f"transport to {uri}"

    return open_transport


def test_open_client_follows_a_redirect_to_a_new_attempt() -> None:
    clock = Clock()
    session = ClientSession("ws://example.com/old", **QUIET)
    runner = Runner(clock)
    answers = {"/old": redirect_to("/new"), "/new": accept}
    runner.overrides[ops.OpenTransport] = opener(runner, answers.__getitem__)
    transport = runner.run(ops.open_client(session, clock))
    # What OpenTransport returned for the attempt that opened.
    assert transport == "transport to ws://example.com/new"
    first, second = runner.wires
    assert first.closes == [Close.ABORT]  # the transport that answered 302
    assert second.closes == []
    assert state(second.endpoint) is State.OPEN
    requests = [event for wire in runner.wires for event in wire.events]
    assert [r.path for r in requests if isinstance(r, Request)] == ["/old", "/new"]


def test_open_client_raises_what_the_session_decides_and_aborts() -> None:
    clock = Clock()
    session = ClientSession(URL, **QUIET)
    runner = Runner(clock)

    def refuse(server: ServerConnection, request: Request) -> None:
        server.reject(403)

    runner.overrides[ops.OpenTransport] = opener(runner, lambda path: refuse)
    with pytest.raises(InvalidStatus):
        runner.run(ops.open_client(session, clock))
    assert runner.wires[0].closes == [Close.ABORT]


def test_open_client_raises_the_open_timeout_when_no_transport_opened() -> None:
    clock = Clock()
    session = ClientSession(URL, **{**QUIET, "open_timeout": 5.0})
    runner = Runner(clock, overrides={ops.OpenTransport: lambda effect: None})
    with pytest.raises(OpenTimeout, match=r"after 5\.0 seconds"):
        runner.run(ops.open_client(session, clock))
    (effect,) = runner.effects
    assert isinstance(effect, ops.OpenTransport)
    assert effect.deadline == 5.0
    assert effect.endpoint.actions(clock()).close is Close.ABORT


@pytest.mark.parametrize("error", [OSError("connection refused"), KeyboardInterrupt()], ids=type)
def test_an_error_opening_the_transport_aborts_the_attempt_and_propagates(
    error: BaseException,
) -> None:
    clock = Clock()
    runner = Runner(clock, fail_at=(0, error))
    with pytest.raises(type(error)):
        runner.run(ops.open_client(ClientSession(URL, **QUIET), clock))
    (effect,) = runner.effects
    assert isinstance(effect, ops.OpenTransport)
    assert effect.endpoint.actions(clock()).close is Close.ABORT


@pytest.mark.parametrize("error", [KeyboardInterrupt(), asyncio.CancelledError()], ids=type)
def test_an_interrupted_handshake_wait_aborts_the_attempt_and_propagates(
    error: BaseException,
) -> None:
    clock = Clock()
    runner = Runner(clock, fail_at=(1, error))
    runner.overrides[ops.OpenTransport] = opener(runner, lambda path: accept)
    with pytest.raises(type(error)):
        runner.run(ops.open_client(ClientSession(URL, **QUIET), clock))
    assert runner.waits() == [Wait.HANDSHAKE]
    assert runner.wires[0].closes == [Close.ABORT]


# -------------------------------------------------------------- finish


def test_finish_after_the_user_returned_closes_with_1000() -> None:
    clock = Clock()
    wire = client_wire(clock)
    failed = Runner(clock, wire).run(ops.finish(wire.endpoint, None, clock))
    assert failed is False
    assert closed_events(wire) == [Closed(1000, "", clean=True)]
    assert wire.closes == [Close.FLUSH]
    assert wire.endpoint.ready(Wait.TRANSPORT_CLOSED)


def test_finish_after_an_exception_closes_with_1011_and_reports_a_failure() -> None:
    clock = Clock()
    wire = client_wire(clock)
    failed = Runner(clock, wire).run(ops.finish(wire.endpoint, RuntimeError("boom"), clock))
    assert failed is True
    assert closed_events(wire) == [Closed(1011, "internal error", clean=True)]


def test_finish_after_this_connections_own_connection_closed_is_no_failure() -> None:
    # How the peer ending the connection reaches the code that used it.
    clock = Clock()
    wire = client_wire(clock)
    server = wire.peer
    server.close(1000, "bye")
    wire.pump(clock())
    with pytest.raises(ConnectionClosedOK) as info:
        wire.endpoint.next_message(clock())
    failed = Runner(clock, wire).run(ops.finish(wire.endpoint, info.value, clock))
    assert failed is False
    assert closed_events(wire) == [Closed(1000, "bye", clean=True)]
    closes = [payload for opcode, payload, _ in sent_frames(wire) if opcode == Opcode.CLOSE]
    assert closes == [(1000).to_bytes(2, "big") + b"bye"]  # the echo, and nothing more


def test_finish_after_a_connection_closed_from_elsewhere_while_open_is_a_failure() -> None:
    # A user relaying to another connection that closed has failed: its own
    # connection is still open and gets 1011.
    clock = Clock()
    wire = client_wire(clock)
    elsewhere = ConnectionClosedOK(1000, "", clean=True)
    failed = Runner(clock, wire).run(ops.finish(wire.endpoint, elsewhere, clock))
    assert failed is True
    assert closed_events(wire) == [Closed(1011, "internal error", clean=True)]


@pytest.mark.parametrize(
    "error", [KeyboardInterrupt(), SystemExit(1), asyncio.CancelledError()], ids=type
)
def test_finish_after_an_interruption_aborts_at_once(error: BaseException) -> None:
    clock = Clock()
    wire = client_wire(clock)
    runner = Runner(clock, wire)
    assert runner.run(ops.finish(wire.endpoint, error, clock)) is False
    assert runner.effects == []  # no waiting for the peer
    assert wire.closes == [Close.ABORT]
    assert closed_events(wire) == [Closed(1006, "", clean=False)]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, False),
        (ValueError("boom"), False),
        (ConnectionClosedOK(1000, "", clean=True), False),
        (KeyboardInterrupt(), True),
        (SystemExit(1), True),
        (asyncio.CancelledError(), True),
        (GeneratorExit(), True),
    ],
    ids=repr,
)
def test_only_what_is_not_an_exception_interrupts(
    error: BaseException | None, expected: bool
) -> None:
    # The one rule every driver's server block and every finish() follow:
    # cancellation and interruption abort, failures close.
    assert ops.interrupted(error) is expected


# -------------------------------------------------------------- close


def test_close_returns_once_the_transport_closed() -> None:
    clock = Clock()
    wire = client_wire(clock)
    runner = Runner(clock, wire)
    runner.run(ops.close(wire.endpoint, 1001, "going", clock))
    assert runner.waits() == [Wait.TRANSPORT_CLOSED]
    assert closed_events(wire) == [Closed(1001, "going", clean=True)]
    assert wire.closes == [Close.FLUSH]


def test_close_with_a_code_that_may_not_be_sent_raises_before_waiting() -> None:
    clock = Clock()
    wire = client_wire(clock)
    runner = Runner(clock, wire)
    with pytest.raises(LocalProtocolError, match="1006 may not be sent"):
        runner.run(ops.close(wire.endpoint, 1006, "", clock))
    assert runner.effects == []
    assert state(wire.endpoint) is State.OPEN


@pytest.mark.parametrize("error", [KeyboardInterrupt(), asyncio.CancelledError()], ids=type)
def test_an_interrupted_close_aborts_and_reraises(error: BaseException) -> None:
    clock = Clock()
    wire = client_wire(clock)
    with pytest.raises(type(error)):
        Runner(clock, wire, fail_at=(0, error)).run(ops.close(wire.endpoint, 1000, "", clock))
    assert wire.closes == [Close.ABORT]


# -------------------------------------------------------------- send


def test_a_whole_message_waits_until_no_fragmented_message_is_being_sent() -> None:
    # The message the procedure queued after the wait reaches the wire: the
    # runner carries out the actions after every step.
    clock = Clock()
    wire = client_wire(clock)
    endpoint = wire.endpoint
    endpoint.send_fragment("first", clock())
    wire.apply(clock())

    def other_sender_ends(effect: ops.WaitFor) -> bool:
        # Another task ends its message, and its runner applies the actions.
        assert effect.what is Wait.SENDABLE
        endpoint.end_fragments()
        wire.apply(clock())
        return True

    runner = Runner(clock, wire, overrides={ops.WaitFor: other_sender_ends})
    runner.run(ops.send(endpoint, "second", clock, asynchronous=False))
    assert runner.waits() == [Wait.SENDABLE]
    wire.pump(clock())
    messages = [event for event in wire.events if isinstance(event, Message)]
    assert messages == [Message("first"), Message("second")]


def test_a_whole_message_returns_once_the_buffer_drained() -> None:
    clock = Clock()
    wire = client_wire(clock, write_limit=100)
    wire.endpoint.unwritten(101)  # the transport holds more than write_limit

    def drained(effect: ops.WaitFor) -> bool:
        wire.endpoint.unwritten(0)
        return True

    runner = Runner(clock, wire, overrides={ops.WaitFor: drained})
    runner.run(ops.send(wire.endpoint, b"x", clock, asynchronous=False))
    assert runner.waits() == [Wait.DRAINED]
    assert [event for event in wire.events if isinstance(event, Message)] == [Message(b"x")]


def test_a_fragmented_message_from_an_iterator_ends_with_an_empty_final_frame() -> None:
    clock = Clock()
    wire = client_wire(clock)
    Runner(clock, wire).run(ops.send(wire.endpoint, ["a", "b"], clock, asynchronous=False))
    assert sent_frames(wire) == [
        (Opcode.TEXT, b"a", False),
        (Opcode.CONTINUATION, b"b", False),
        (Opcode.CONTINUATION, b"", True),
    ]
    assert [event for event in wire.events if isinstance(event, Message)] == [Message("ab")]
    assert not wire.endpoint.sending_fragments


def test_a_fragmented_message_from_an_async_iterator_ends_with_an_empty_final_frame() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    clock = Clock()
    wire = client_wire(clock)
    Runner(clock, wire).run(ops.send(wire.endpoint, source(), clock, asynchronous=True))
    assert sent_frames(wire) == [
        (Opcode.BINARY, b"a", False),
        (Opcode.CONTINUATION, b"b", False),
        (Opcode.CONTINUATION, b"", True),
    ]


def test_a_fragmented_message_waits_until_no_other_one_is_being_sent() -> None:
    clock = Clock()
    wire = client_wire(clock)
    wire.endpoint.send_fragment("other", clock())

    def other_sender_ends(effect: ops.WaitFor) -> bool:
        wire.endpoint.end_fragments()
        return True

    runner = Runner(clock, wire, overrides={ops.WaitFor: other_sender_ends})
    runner.run(ops.send(wire.endpoint, iter(["mine"]), clock, asynchronous=False))
    assert runner.waits() == [Wait.SENDABLE]
    messages = [event for event in wire.events if isinstance(event, Message)]
    assert messages == [Message("other"), Message("mine")]


def test_an_empty_iterable_sends_no_message() -> None:
    clock = Clock()
    wire = client_wire(clock)
    Runner(clock, wire).run(ops.send(wire.endpoint, [], clock, asynchronous=False))
    assert wire.written == b""
    assert state(wire.endpoint) is State.OPEN


def test_an_exception_from_the_source_after_the_first_fragment_fails_with_1011() -> None:
    # The peer cannot be told to drop half a message.
    def source() -> Iterator[str]:
        yield "half"
        raise ValueError("source failed")

    clock = Clock()
    wire = client_wire(clock)
    with pytest.raises(ValueError, match="source failed"):
        Runner(clock, wire).run(ops.send(wire.endpoint, source(), clock, asynchronous=False))
    assert closed_events(wire) == [Closed(1011, "incomplete fragmented message", clean=True)]
    assert wire.closes == [Close.ABORT]


# On a slow wire (write_limit 1), sending ["a", "b"] yields: 0 NextFragment
# ("a"), 1 NextFragment ("b"), 2 WaitFor(DRAINED), 3 NextFragment (DONE).
YIELD_POINTS = {1: "next fragment", 2: "drain wait", 3: "end of the source"}


def test_the_yield_points_of_a_fragmented_send_on_a_slow_wire() -> None:
    clock = Clock()
    wire = client_wire(clock, slow=True, write_limit=1)
    runner = Runner(clock, wire)
    runner.run(ops.send(wire.endpoint, ["a", "b"], clock, asynchronous=False))
    kinds = [type(effect).__name__ for effect in runner.effects]
    assert kinds == ["NextFragment", "NextFragment", "WaitFor", "NextFragment"]
    assert runner.waits() == [Wait.DRAINED]


@pytest.mark.parametrize("index", YIELD_POINTS, ids=YIELD_POINTS.values())
@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), KeyboardInterrupt(), asyncio.CancelledError()], ids=type
)
def test_an_exception_at_any_yield_point_after_the_first_fragment_fails_with_1011(
    index: int, error: BaseException
) -> None:
    clock = Clock()
    wire = client_wire(clock, slow=True, write_limit=1)
    runner = Runner(clock, wire, fail_at=(index, error))
    with pytest.raises(type(error)):
        runner.run(ops.send(wire.endpoint, ["a", "b"], clock, asynchronous=False))
    assert wire.endpoint.connection.close_code == 1011
    assert wire.closes == [Close.ABORT]
    assert not wire.endpoint.sending_fragments


def test_an_exception_before_the_first_fragment_leaves_the_connection_open() -> None:
    def source() -> Iterator[str]:
        raise ValueError("nothing to send")
        yield ""  # pragma: no cover - makes it a generator

    clock = Clock()
    wire = client_wire(clock)
    with pytest.raises(ValueError, match="nothing to send"):
        Runner(clock, wire).run(ops.send(wire.endpoint, source(), clock, asynchronous=False))
    assert state(wire.endpoint) is State.OPEN
    assert wire.written == b""


def test_an_async_iterable_cannot_be_sent_from_blocking_code() -> None:
    async def source() -> AsyncGenerator[str, None]:
        yield "x"  # pragma: no cover - never iterated

    clock = Clock()
    wire = client_wire(clock)
    iterable = source()
    with pytest.raises(TypeError, match="async iterable"):
        Runner(clock, wire).run(ops.send(wire.endpoint, iterable, clock, asynchronous=False))
    assert wire.written == b""
    complete(iterable.aclose())


@pytest.mark.parametrize(
    ("message", "received"),
    [("chat", "chat"), (b"chat", b"chat"), (bytearray(b"chat"), b"chat")],
    ids=["str", "bytes", "bytearray"],
)
def test_a_str_or_bytes_like_is_one_message_not_an_iterable(
    message: object, received: str | bytes
) -> None:
    # Not "c", "h", "a", "t".
    clock = Clock()
    wire = client_wire(clock)
    Runner(clock, wire).run(ops.send(wire.endpoint, message, clock, asynchronous=False))
    queued = wire.written + wire.endpoint.data_to_send()  # however it is written
    assert wire.peer.receive_data(queued) == [Message(received)]


@pytest.mark.parametrize("message", [{"a": "b"}, 42, None], ids=["Mapping", "int", "None"])
def test_a_mapping_or_a_non_iterable_is_a_type_error(message: object) -> None:
    # Iterating a mapping would send its keys.
    clock = Clock()
    wire = client_wire(clock)
    with pytest.raises(TypeError, match="str, bytes-like or an iterable of them"):
        Runner(clock, wire).run(ops.send(wire.endpoint, message, clock, asynchronous=False))
    assert wire.written == b""


# -------------------------------------------------------------- drain


def test_drain_returns_at_once_when_nothing_waits_to_be_written() -> None:
    clock = Clock()
    wire = client_wire(clock)
    runner = Runner(clock, wire)
    runner.run(ops.drain(wire.endpoint))
    assert runner.effects == []


def test_drain_raises_connection_closed_if_the_transport_closed_with_bytes_unwritten() -> None:
    clock = Clock()
    wire = client_wire(clock, write_limit=10)
    wire.endpoint.unwritten(11)
    wire.endpoint.transport_closed(clock())
    with pytest.raises(ConnectionClosedError) as info:
        Runner(clock, wire).run(ops.drain(wire.endpoint))
    assert info.value.code == 1006


# -------------------------------------------------------------- serve


class Handler:
    """A handler that records what it was called with, then returns or
    raises ``error``."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)
        if self.error is not None:
            raise self.error


def serve(
    runner: Runner, handler: Handler, process_request: Any = None, *, tls: bool = False
) -> None:
    assert runner.wire is not None
    runner.run(
        ops.serve(
            runner.wire.endpoint,
            "the driver's connection",
            runner.clock,
            handler=handler,
            process_request=process_request,
            tls=tls,
        )
    )


def assert_opening_failure_reported(runner: Runner, wire: Wire) -> None:
    """One report, at DEBUG and without a traceback (the Internet's noise),
    saying why the opening failed."""
    ((level, message, error),) = runner.reports()
    assert (level, error) == (logging.DEBUG, None)
    assert str(wire.endpoint.connection.close_error) in message


def status_written(wire: Wire) -> bytes:
    return wire.written.split(b"\r\n", 1)[0]


def test_serve_runs_the_handler_and_closes_with_1000_when_it_returns() -> None:
    clock = Clock()
    wire = server_wire(clock)
    handler = Handler()
    runner = Runner(clock, wire)
    serve(runner, handler)
    assert handler.calls == [("the driver's connection",)]
    assert closed_events(wire) == [Closed(1000, "", clean=True)]
    assert wire.closes == [Close.FLUSH]
    assert runner.reports() == []


def test_serve_accepts_when_process_request_returns_none() -> None:
    clock = Clock()
    wire = server_wire(clock)
    seen: list[tuple[Any, ...]] = []
    serve(Runner(clock, wire), Handler(), lambda *args: seen.append(args))
    ((connection, request),) = seen
    assert connection == "the driver's connection"
    assert isinstance(request, Request)
    assert request.path == "/chat"
    assert any(isinstance(event, Accepted) for event in wire.events)


def test_serve_refuses_with_the_response_of_process_request_without_a_report() -> None:
    # The application's own refusal is no failure.
    clock = Clock()
    wire = server_wire(clock)
    handler = Handler()
    runner = Runner(clock, wire)
    serve(runner, handler, lambda connection, request: Response(401, body=b"who?\n"))
    (rejected,) = [event for event in wire.events if isinstance(event, Rejected)]
    assert (rejected.status, rejected.body) == (401, b"who?\n")
    assert handler.calls == []
    assert runner.reports() == []
    assert wire.closes == [Close.FLUSH]


def test_serve_answers_500_when_process_request_raises_and_reports_it() -> None:
    clock = Clock()
    wire = server_wire(clock)
    error = RuntimeError("hook bug")

    def process_request(connection: object, request: Request) -> None:
        raise error

    runner = Runner(clock, wire)
    serve(runner, Handler(), process_request)
    assert runner.reports() == [(logging.ERROR, "process_request failed", error)]
    (rejected,) = [event for event in wire.events if isinstance(event, Rejected)]
    assert rejected.status == 500
    assert rejected.body == ops.PROCESS_REQUEST_FAILED.body
    assert b"See the server log" in wire.written


def test_serve_drops_a_connection_whose_process_request_answered_too_late() -> None:
    # A blocking hook cannot be interrupted: its answer is not used once the
    # open deadline passed.
    clock = Clock()
    wire = server_wire(clock)
    handler = Handler()

    def slow_hook(connection: object, request: Request) -> None:
        clock.now = 10.5  # past endpoint.open_deadline (10.0)

    runner = Runner(clock, wire)
    serve(runner, handler, slow_hook)
    assert wire.endpoint.open_deadline == 10.0
    assert b"101" not in status_written(wire)
    assert handler.calls == []
    assert isinstance(wire.endpoint.connection.close_error, OpenTimeout)
    assert wire.closes == [Close.ABORT]
    assert_opening_failure_reported(runner, wire)


@pytest.mark.parametrize("when", [10.0, 10.0 - 1e-6], ids=["at", "a hair before"])
def test_serve_drops_a_connection_whose_process_request_timed_out(when: float) -> None:
    # An async driver cancels the hook at the open deadline and says
    # TIMED_OUT; its event loop may run that timer up to its clock
    # resolution early, so the clock may read a hair before the deadline.
    clock = Clock()
    wire = server_wire(clock)
    handler = Handler()
    runner = Runner(clock, wire)

    def cancelled(effect: ops.Call) -> Any:
        if effect.function is handler:
            return runner.default(effect)
        assert effect.deadline == 10.0
        clock.now = when
        return ops.TIMED_OUT

    runner.overrides[ops.Call] = cancelled
    serve(runner, handler, lambda connection, request: None)
    assert wire.written == b""
    assert handler.calls == []
    assert wire.closes == [Close.ABORT]


def test_serve_reports_an_invalid_request_at_debug() -> None:
    clock = Clock()
    bad = request_bytes(extra=[("Sec-WebSocket-Version", "8")])
    wire = server_wire(clock, request=bad)
    runner = Runner(clock, wire)
    serve(runner, Handler())
    assert status_written(wire).startswith(b"HTTP/1.1 4")
    assert_opening_failure_reported(runner, wire)


def test_serve_reports_a_client_that_left_before_its_request_at_debug() -> None:
    clock = Clock()
    wire = server_wire(clock, request=b"GET /chat HTTP/1.1\r\n")
    runner = Runner(clock, wire)

    def leaves(effect: ops.WaitFor) -> Any:
        if effect.what is Wait.REQUEST:
            wire.pump(clock())  # half a request
            wire.endpoint.receive_data(b"", clock())  # and gone
        return runner.default(effect)

    runner.overrides[ops.WaitFor] = leaves
    serve(runner, Handler())
    assert_opening_failure_reported(runner, wire)
    assert "connection closed during the opening handshake" in runner.reports()[0][1]
    assert wire.written == b""


def test_serve_aborts_and_reports_at_debug_when_the_tls_handshake_fails() -> None:
    clock = Clock()
    wire = server_wire(clock)
    runner = Runner(clock, wire, fail_at=(0, OSError("bad certificate")))
    serve(runner, Handler(), tls=True)
    start_tls = runner.effects[0]
    assert isinstance(start_tls, ops.StartTLS)
    assert start_tls.deadline == 10.0  # bounded by the open timeout
    assert runner.reports() == [(logging.DEBUG, "TLS handshake failed: bad certificate", None)]
    assert wire.closes == [Close.ABORT]
    assert runner.waits() == []


def test_serve_aborts_and_reports_at_debug_when_the_tls_handshake_did_not_finish() -> None:
    clock = Clock()
    wire = server_wire(clock)
    runner = Runner(clock, wire, overrides={ops.StartTLS: lambda effect: False})
    serve(runner, Handler(), tls=True)
    assert wire.closes == [Close.ABORT]
    assert [type(effect) for effect in runner.effects] == [ops.StartTLS, ops.Report]
    (report,) = [effect for effect in runner.effects if isinstance(effect, ops.Report)]
    assert report.level == logging.DEBUG
    assert report.message == "opening handshake timed out"


def test_serve_reports_nothing_when_the_tls_handshake_was_aborted_meanwhile() -> None:
    clock = Clock()
    wire = server_wire(clock)

    def aborted(effect: ops.StartTLS) -> bool:
        wire.endpoint.abort(clock())  # a shutdown dropped it during TLS
        return False

    runner = Runner(clock, wire, overrides={ops.StartTLS: aborted})
    serve(runner, Handler(), tls=True)
    assert [type(effect) for effect in runner.effects] == [ops.StartTLS]


def test_serve_closes_with_1011_and_reports_a_handler_that_raised() -> None:
    clock = Clock()
    wire = server_wire(clock)
    error = RuntimeError("handler bug")
    runner = Runner(clock, wire)
    serve(runner, Handler(error))  # not raised: reported
    assert runner.reports() == [(logging.ERROR, "connection handler failed", error)]
    assert closed_events(wire) == [Closed(1011, "internal error", clean=True)]


def test_serve_reports_nothing_for_a_handler_ended_by_its_connection_closing() -> None:
    clock = Clock()
    wire = server_wire(clock)
    client = wire.peer

    def handler(connection: object) -> None:
        client.close(1000)
        wire.pump(clock())
        wire.endpoint.next_message(clock())  # raises ConnectionClosedOK

    runner = Runner(clock, wire)
    runner.run(ops.serve(wire.endpoint, None, clock, handler=handler))
    assert runner.reports() == []
    assert closed_events(wire) == [Closed(1000, "", clean=True)]


@pytest.mark.parametrize("error", [KeyboardInterrupt(), asyncio.CancelledError()], ids=type)
def test_serve_aborts_and_reraises_when_the_handler_is_interrupted(error: BaseException) -> None:
    clock = Clock()
    wire = server_wire(clock)
    runner = Runner(clock, wire)
    with pytest.raises(type(error)):
        serve(runner, Handler(error))
    assert wire.closes == [Close.ABORT]
    assert runner.reports() == []


@pytest.mark.parametrize("error", [KeyboardInterrupt(), asyncio.CancelledError()], ids=type)
def test_serve_aborts_and_reraises_when_the_opening_is_interrupted(error: BaseException) -> None:
    clock = Clock()
    wire = server_wire(clock)
    handler = Handler()
    runner = Runner(clock, wire, fail_at=(0, error))  # the wait for the request
    with pytest.raises(type(error)):
        serve(runner, handler)
    assert runner.waits() == [Wait.REQUEST]
    assert wire.closes == [Close.ABORT]
    assert handler.calls == []
