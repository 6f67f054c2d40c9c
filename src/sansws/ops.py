"""Procedures: the sequences with waits in the middle, written once.

Opening a client connection across redirects, sending a message in
fragments, closing, ending a client block or a server handler, and serving
one accepted connection all wait for the network or the application between
their steps. Each is a generator that never blocks itself: it yields an
*effect* from the small closed set below, and the driver's runner carries it
out with its own primitives and sends the result back (or throws the
exception the effect raised, cancellation and KeyboardInterrupt included).
The rule for every failure, and the cleanup after it, is therefore written
once, here::

    def run(procedure, connection):
        value, error = None, None
        while True:
            try:
                effect = procedure.throw(error) if error else procedure.send(value)
            except StopIteration as stop:
                return stop.value
            finally:
                if connection.endpoint.dirty:                  # after every step
                    apply(connection.endpoint.actions(clock()))
            try:
                value, error = perform(effect), None
            except BaseException as exc:
                value, error = None, exc

A runner applies the endpoint's :class:`~sansws.endpoint.Actions` after
every step that left it :attr:`~sansws.endpoint.Endpoint.dirty`, whether the
step yielded, returned or raised. Cleanup after an
exception never waits: it aborts, which every driver does at once.

The effects, and what a runner returns for each:

* :class:`WaitFor` -- wait until :meth:`Endpoint.ready` holds for the
  condition, or until the deadline: ``True``, or ``False`` at the deadline;
* :class:`NextFragment` -- the next item of a (sync or async) iterator, or
  :data:`DONE`;
* :class:`OpenTransport` -- open the transport to the target (TCP or Unix,
  then TLS) before the deadline and attach it to the endpoint: a handle for
  the driver's connection, or ``None`` at the deadline; raises ``OSError``;
* :class:`StartTLS` -- run a server's TLS handshake before the deadline:
  ``True``, or ``False`` at the deadline or once the connection closed;
  raises ``OSError``;
* :class:`Call` -- call the application's function (awaiting it if it
  returns an awaitable): its result, or :data:`TIMED_OUT` if the driver
  could cancel it at the deadline;
* :class:`Report` -- log a message to the server logger: ``None``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard, TypeVar

from .connection import ServerConnection, State
from .endpoint import Endpoint, Response, Wait, is_message
from .errors import ConnectionClosed, LocalProtocolError, OpenTimeout
from .events import Request
from .headers import HeadersLike
from .routing import Router
from .session import ClientSession, Target

__all__ = [
    "DONE",
    "LOGGER",
    "PROCESS_REQUEST_FAILED",
    "TIMED_OUT",
    "Call",
    "Clock",
    "Effect",
    "NextFragment",
    "OpenTransport",
    "Procedure",
    "Report",
    "StartTLS",
    "WaitFor",
    "close",
    "drain",
    "finish",
    "interrupted",
    "open_client",
    "send",
    "serve",
]

_T = TypeVar("_T")
_CONNECTING = State.CONNECTING

#: The logger the drivers report server events to.
LOGGER: Final = "sansws.server"

#: The answer to a handshake whose ``process_request`` hook raised.
PROCESS_REQUEST_FAILED: Final = Response(
    500,
    body=b"Failed to open a WebSocket connection.\nSee the server log for more information.\n",
)


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: What :class:`NextFragment` returns once the iterator is exhausted.
DONE: Final = _Sentinel("DONE")
#: What :class:`Call` returns when the driver cancelled the call at its
#: deadline.
TIMED_OUT: Final = _Sentinel("TIMED_OUT")


@dataclass(frozen=True, slots=True)
class WaitFor:
    """Wait until ``endpoint.ready(what)``, or until ``deadline``."""

    what: Wait
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class NextFragment:
    """Take the next item of ``source`` (``next()``, or ``anext()`` for an
    async iterator), or :data:`DONE`."""

    source: Any  # an iterator, or an async iterator


@dataclass(frozen=True, slots=True)
class OpenTransport:
    """Open a transport to ``target`` before ``deadline`` and attach it to
    ``endpoint``; TLS with the application's context if
    ``target.custom_tls``, else with a default one."""

    endpoint: Endpoint
    target: Target
    deadline: float | None


@dataclass(frozen=True, slots=True)
class StartTLS:
    """Run a server's TLS handshake before ``deadline``."""

    deadline: float | None


@dataclass(frozen=True, slots=True)
class Call:
    """Call ``function(*args)``; an async driver cancels it at ``deadline``."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Log ``message`` at ``level`` to :data:`LOGGER`, with ``error``'s
    traceback if given."""

    level: int
    message: str
    error: BaseException | None = None


Effect = WaitFor | NextFragment | OpenTransport | StartTLS | Call | Report
Procedure = Generator[Effect, Any, _T]
Clock = Callable[[], float]


# ---------------------------------------------------------------------- client


def interrupted(error: BaseException | None) -> TypeGuard[BaseException]:
    """Whether leaving a block with ``error`` -- a client's ``with``
    block, a server's handler or a server's own block -- must abort its
    connections at once rather than wait for close handshakes: it was
    cancelled or interrupted (``KeyboardInterrupt``, ``SystemExit``,
    anything that is not an :class:`Exception`)."""
    return error is not None and not isinstance(error, Exception)


def open_client(session: ClientSession, clock: Clock) -> Procedure[Any]:
    """Open a client connection: one attempt after another across
    redirects, within the session's open timeout. Returns what
    :class:`OpenTransport` returned for the attempt that opened.

    Raises what :meth:`ClientSession.outcome` raises, ``OSError`` from the
    transport, and :class:`~sansws.errors.OpenTimeout` when the budget is
    spent; the transport of a failed attempt is aborted.
    """
    settings = session.settings
    attempt = session.start(clock())
    while True:
        endpoint = Endpoint(
            attempt.connection,
            clock(),
            max_queue=settings["max_queue"],
            write_limit=settings["write_limit"],
        )
        try:
            transport = yield OpenTransport(endpoint, attempt.target, attempt.deadline)
            if transport is None:
                raise session.timed_out()
            # The connection's own open timer ends a silent server at the
            # session's deadline.
            yield WaitFor(Wait.HANDSHAKE)
            next_attempt = session.outcome(attempt, clock())
        except BaseException:
            endpoint.abort(clock())
            raise
        if next_attempt is None:
            return transport
        endpoint.abort(clock())  # the transport that answered with a redirect
        attempt = next_attempt


# ---------------------------------------------------------------------- sending


def send(
    endpoint: Endpoint,
    message: Any,
    clock: Clock,
    *,
    asynchronous: bool,
    text: bool | None = None,
) -> Procedure[None]:
    """Send a message (``str`` as text, bytes-like as binary, unless
    ``text`` says otherwise: see :meth:`Endpoint.send`) or, from an
    iterable (or, with ``asynchronous``, an async iterable) of them, one
    message in fragments, one frame per item. Waits while another message is
    being sent in fragments, and returns once the buffer drained below
    ``write_limit``.

    A fragmented message that cannot be finished (its source raised, or the
    wait was cancelled or interrupted) fails the connection with 1011: the
    peer cannot be told to drop half a message.

    Raises:
        TypeError: ``message`` is none of the above.
        ConnectionClosed: The connection is closing or closed.
    """
    if is_message(message):
        while not endpoint.ready(Wait.SENDABLE):
            yield WaitFor(Wait.SENDABLE)
        endpoint.send(message, text=text)
        endpoint.dirty = True  # the runner writes what it queued
        yield from drain(endpoint)
        return
    source = _fragments(message, asynchronous)
    first = yield NextFragment(source)
    if first is DONE:
        return  # an empty iterable is no message
    while not endpoint.ready(Wait.SENDABLE):
        yield WaitFor(Wait.SENDABLE)
    endpoint.send_fragment(first, clock(), text=text)
    try:
        while True:
            while not endpoint.ready(Wait.DRAINED):
                yield WaitFor(Wait.DRAINED)
            fragment = yield NextFragment(source)
            if fragment is DONE:
                break
            endpoint.send_fragment(fragment, clock(), text=text)
        endpoint.end_fragments()
    except BaseException:
        endpoint.abort_fragments(clock())
        raise
    yield from drain(endpoint)


def _fragments(message: object, asynchronous: bool) -> Iterator[Any] | AsyncIterator[Any]:
    if hasattr(message, "__aiter__"):
        if not asynchronous:
            raise TypeError("an async iterable cannot be sent from blocking code")
        return message.__aiter__()  # type: ignore[no-any-return]
    if isinstance(message, Iterable) and not isinstance(message, Mapping):
        return iter(message)
    raise TypeError(
        f"message must be str, bytes-like or an iterable of them, not {type(message).__name__}"
    )


def drain(endpoint: Endpoint) -> Procedure[None]:
    """Wait until the unwritten bytes fell below the low-water mark.

    Raises:
        ConnectionClosed: The transport closed with bytes still unwritten.
    """
    while not endpoint.ready(Wait.DRAINED):
        yield WaitFor(Wait.DRAINED)
    if endpoint.write_mark.paused:
        raise endpoint.closed_error()


# ---------------------------------------------------------------------- closing


def close(endpoint: Endpoint, code: int, reason: str, clock: Clock) -> Procedure[None]:
    """Run the close handshake and return once the transport is closed (at
    most about ``close_timeout`` later). If the wait is cancelled or
    interrupted, the transport is aborted.

    Raises:
        LocalProtocolError: ``code`` may not be sent, or ``reason`` is too
            long.
    """
    endpoint.close(code, reason, clock())
    yield from _wait_closed(endpoint, clock)


def finish(endpoint: Endpoint, error: BaseException | None, clock: Clock) -> Procedure[bool]:
    """End the connection once its user -- a client's ``with`` block or a
    server's handler -- is done, ``error`` being what it raised (or
    ``None``); return whether ``error`` is a failure to report.

    The rule, for clients and servers alike:

    * it returned: close with 1000;
    * it raised an exception: close with 1011 ("internal error"), except for
      the :class:`~sansws.errors.ConnectionClosed` that using this connection
      after it closed raises, which is how the peer ending the connection
      reaches the code that used it (1000, and no failure);
    * it was cancelled or interrupted (``KeyboardInterrupt``,
      ``SystemExit``): abort at once, without waiting for the peer.
    """
    failed = _start_finish(endpoint, error, clock())
    if not interrupted(error):
        yield from _wait_closed(endpoint, clock)
    return failed


def _start_finish(endpoint: Endpoint, error: BaseException | None, now: float) -> bool:
    if interrupted(error):
        endpoint.abort(now)
        return False
    failed = error is not None and not (
        isinstance(error, ConnectionClosed) and endpoint.state is not State.OPEN
    )
    if failed:
        endpoint.close(1011, "internal error", now)
    else:
        endpoint.close(1000, "", now)
    return failed


def _wait_closed(endpoint: Endpoint, clock: Clock) -> Procedure[None]:
    try:
        yield WaitFor(Wait.TRANSPORT_CLOSED)
    except BaseException:
        endpoint.abort(clock())
        raise


# ---------------------------------------------------------------------- serving


def serve(
    endpoint: Endpoint,
    connection: object,
    clock: Clock,
    *,
    handler: Callable[..., Any],
    process_request: Callable[..., Any] | None = None,
    tls: bool = False,
    extra_headers: HeadersLike = (),
    select_subprotocol: Callable[..., Any] | None = None,
    router: Router | None = None,
    process_response: Callable[..., Any] | None = None,
) -> Procedure[None]:
    """Serve one accepted connection, from the TCP accept to the closed
    transport; ``connection`` is the driver's object handed to the hooks.

    The steps, every one before the answer bounded by the open timeout,
    which runs from the accept (``endpoint.open_deadline``): the TLS
    handshake; the request; when ``handler`` is a
    :class:`~sansws.routing.Router`, the route its path matches
    (``endpoint.route`` and ``endpoint.path_params``);
    ``process_request(connection, request)``, whose answer is not used if it
    comes after the deadline (an async driver cancels it there) -- the
    connection is then dropped; a router's 404 for a path no route matches
    (``router`` is the handler's, for a driver that wraps its handler);
    ``select_subprotocol(connection, offered)`` for a valid request;
    ``process_response(connection, request, response)``, which sees the
    answer about to be sent (the refusal, or the 101 as a ``Response`` with
    status 101) and may return another; the answer (a
    :class:`~sansws.endpoint.Response` refuses, ``None`` accepts; a hook
    that raises, or whose answer cannot be sent, gets the one 500 response,
    :data:`PROCESS_REQUEST_FAILED`); ``handler(connection)`` (the
    route's handler, for a router); then :func:`finish`. Failures before the answer
    (a client that left, a TLS error, the open timeout) are reported at
    DEBUG: they are the Internet's noise. A hook or a handler that raises is
    reported at ERROR, with its traceback.
    """
    deadline = endpoint.open_deadline
    if router is None and isinstance(handler, Router):
        router = handler
    try:
        if tls:
            try:
                secured = yield StartTLS(deadline)
            except OSError as exc:
                yield Report(logging.DEBUG, f"TLS handshake failed: {exc}")
                endpoint.abort(clock())
                return
            if not secured:
                if endpoint.state is not State.CLOSED and deadline is not None:
                    # Not aborted meanwhile: the open timeout passed (a
                    # driver's clock may read a hair before it).
                    endpoint.timer(max(clock(), deadline))
                if isinstance(endpoint.connection.close_error, OpenTimeout):
                    yield Report(logging.DEBUG, _not_opened(endpoint))
                endpoint.abort(clock())
                return
        yield WaitFor(Wait.REQUEST)
        request = endpoint.request
        response: Any = None
        subprotocol: Any = None
        route = None
        if router is not None and request is not None:
            route = router.match(request.path)
            if route is not None:
                endpoint.route, endpoint.path_params = route.pattern, route.params
        if process_request is not None and request is not None and endpoint.state is _CONNECTING:
            response = yield from _hook(
                endpoint, clock, deadline, "process_request", process_request, connection, request
            )
        if response is None and route is None and router is not None and request is not None:
            response = router.not_found(request.path)
        if (
            response is None
            and select_subprotocol is not None
            and request is not None
            and request.error is None
            and endpoint.state is _CONNECTING
        ):
            subprotocol = yield from _hook(
                endpoint,
                clock,
                deadline,
                "select_subprotocol",
                select_subprotocol,
                connection,
                request.subprotocols,
            )
            if subprotocol is PROCESS_REQUEST_FAILED:
                response, subprotocol = subprotocol, None
        select = select_subprotocol is None
        if process_response is not None and request is not None and endpoint.state is _CONNECTING:
            response = yield from _process_response(
                endpoint,
                clock,
                process_response,
                connection=connection,
                request=request,
                response=response,
                subprotocol=subprotocol,
                extra_headers=extra_headers,
                select=select,
            )
        refused = False
        if endpoint.state is State.CONNECTING:
            try:
                _check_response(response, "process_request")
                endpoint.answer(
                    response, clock(), subprotocol=subprotocol, extra_headers=extra_headers,
                    select=select,
                )
            except (LocalProtocolError, TypeError) as exc:
                # What a hook returned cannot be sent (a subprotocol the
                # client did not offer, a 101 that changes the handshake's
                # headers, an unsafe header): the application's error,
                # answered 500.
                yield Report(logging.ERROR, f"cannot answer the handshake: {exc}", exc)
                response = PROCESS_REQUEST_FAILED
                endpoint.answer(response, clock())
            refused = response is not None and response.status != 101
        if endpoint.state is not State.OPEN:
            if not refused:  # the application's own refusal is no failure
                yield Report(logging.DEBUG, _not_opened(endpoint))
            yield from _wait_closed(endpoint, clock)
            return
    except BaseException:
        endpoint.abort(clock())
        raise
    error: BaseException | None = None
    try:
        yield Call(handler, (connection,))
    except BaseException as exc:
        error = exc
    if _start_finish(endpoint, error, clock()):
        yield Report(logging.ERROR, "connection handler failed", error)
    if interrupted(error):
        raise error
    yield from _wait_closed(endpoint, clock)


def _check_response(response: object, hook: str) -> None:
    if response is not None and not isinstance(response, Response):
        raise TypeError(f"{hook} returned {response!r}, not a Response")


def _process_response(
    endpoint: Endpoint,
    clock: Clock,
    hook: Callable[..., Any],
    *,
    connection: object,
    request: Request,
    response: Response | None,
    subprotocol: str | None,
    extra_headers: HeadersLike,
    select: bool,
) -> Procedure[Any]:
    """The answer after ``process_response(connection, request, planned)``:
    the planned one (``response``, or the 101 or error answer the connection
    would send) unless the hook returned another; the 500 if it raised or
    the planned answer itself cannot be sent."""
    planned = response
    try:
        _check_response(response, "process_request")
        if planned is None:
            server = endpoint.connection
            assert isinstance(server, ServerConnection)
            planned = Response(*server.planned_answer(subprotocol, extra_headers, select=select))
    except (LocalProtocolError, TypeError):
        return response  # the answer step reports it, and answers 500
    deadline = endpoint.open_deadline
    changed = yield from _hook(
        endpoint, clock, deadline, "process_response", hook, connection, request, planned
    )
    if changed is None:
        return response  # as planned: the usual 101 for None
    if changed is not TIMED_OUT and not isinstance(changed, Response):
        yield Report(logging.ERROR, f"process_response returned {changed!r}, not a Response")
        return PROCESS_REQUEST_FAILED
    return changed


def _hook(
    endpoint: Endpoint,
    clock: Clock,
    deadline: float | None,
    name: str,
    hook: Callable[..., Any],
    *args: Any,
) -> Procedure[Any]:
    """Run a handshake hook within the open timeout; what it returned, or
    :data:`PROCESS_REQUEST_FAILED` if it raised."""
    try:
        result = yield Call(hook, args, deadline)
    except Exception as exc:
        yield Report(logging.ERROR, f"{name} failed", exc)
        result = PROCESS_REQUEST_FAILED
    # The open timeout may have passed while the hook ran (a blocking hook
    # cannot be interrupted): its answer is then not used, and the
    # connection is dropped. A driver that cancelled the hook did so at the
    # deadline, which its clock may read a hair before.
    now = clock()
    if result is TIMED_OUT and deadline is not None:
        now = max(now, deadline)
    endpoint.timer(now)
    return result


def _not_opened(endpoint: Endpoint) -> str:
    error = endpoint.connection.close_error
    return "connection closed during the opening handshake" if error is None else str(error)
