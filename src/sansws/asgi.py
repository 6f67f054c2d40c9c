"""ASGI's WebSocket protocol over an :class:`~sansws.endpoint.Endpoint`,
sans I/O.

An ASGI server hands a WebSocket request to an application as a scope and
two callables: ``receive()`` returns ``websocket.connect``,
``websocket.receive`` and ``websocket.disconnect`` events, and ``send()``
takes ``websocket.accept``, ``websocket.send``, ``websocket.close`` and the
``websocket.http.response.*`` extension. :class:`ASGIWebSocket` holds every
rule of that translation -- what each message does to the connection in each
state, which disconnect event the application gets and when, what the peer
sees when the application fails or returns early -- so that a server's
driver (``sansws.drivers.uvicorn``) only moves bytes, runs the
application's task and blocks. The rules follow the ASGI specification
(WebSocket, version 2.4) and, where it is silent, what uvicorn's own
backends do:

* ``receive()`` first returns ``websocket.connect``, then the messages, then
  one ``websocket.disconnect``; a later call raises
  :class:`~sansws.errors.ConnectionClosed` (a loop that misses the
  disconnect ends instead of spinning or hanging). Its ``code`` and
  ``reason`` are those of the Close frame received (or sent by the
  application); a connection that ended without one, or whose handshake the
  application or a shutdown refused, gives ``{"code": 1006}``; a server
  shutdown of an open connection ``{"code": 1012}``, at once, to a
  ``receive()`` already waiting too.
* ``send()`` waits while more than ``write_limit`` bytes are unwritten
  *before* it acts, so nothing the application sends (a close included) can
  overtake what is still buffered.
* ``websocket.http.response.body`` parts are gathered until the last one and
  sent as one response with an exact ``Content-Length``.
* An application that raises, or returns without answering, gets a 500
  (``Internal Server Error``) for an unanswered handshake; one that returns
  (or raises) while the connection is open leaves it without a close
  handshake (the peer sees 1006), after what it sent is written; one that
  returns after ``websocket.close`` leaves the close handshake to finish.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

from .connection import ServerConnection, State
from .endpoint import Endpoint, Response, Wait
from .errors import ConnectionClosed, LocalProtocolError
from .ops import Clock, Procedure, Report, WaitFor

__all__ = ["ASGIWebSocket", "SPEC_VERSION", "UnexpectedMessage", "endpoint"]

#: The version of the ASGI WebSocket specification implemented.
SPEC_VERSION: Final = "2.4"

_CONNECTING, _OPEN, _CLOSING, _CLOSED = State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED
_DISCONNECT: Final = "websocket.disconnect"
_ERROR_BODY: Final = b"Internal Server Error"


class UnexpectedMessage(RuntimeError):
    """The application sent an ASGI message the connection's state does not
    allow (a ``websocket.send`` before ``websocket.accept``, a second
    ``websocket.http.response.start``), or a malformed one."""


def endpoint(connection: ServerConnection, now: float, *, write_limit: int = 32768) -> Endpoint:
    """The :class:`~sansws.endpoint.Endpoint` of an ASGI connection: reading
    pauses as soon as a received message waits for the application (ASGI
    hands over one event per ``receive()`` call, so there is no queue to
    fill) -- not for one that arrives while ``receive()`` waits -- and
    sending waits above ``write_limit`` unwritten bytes."""
    return Endpoint(connection, now, max_queue=1, write_limit=write_limit)


def _disconnect(code: int, reason: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": _DISCONNECT, "code": code}
    if reason is not None:
        event["reason"] = reason
    return event


def _text(value: bytes | str) -> str:
    # ASGI headers are bytes; sansws' are str, one byte per character.
    return value if isinstance(value, str) else value.decode("latin-1")


class ASGIWebSocket:
    """The ASGI side of one server connection.

    Args:
        endpoint: The server connection's endpoint, from its accept.
        default_headers: Headers added to every answer before the
            application's own (an ASGI server's ``Server`` and ``Date``).

    The driver calls :meth:`start` after each input until it says to run the
    application, builds the :meth:`scope`, runs the :meth:`receive` and
    :meth:`send` procedures for the application's callables (with
    :func:`sansws.contract.run`), and reports the application's end with
    :meth:`finished` and a server shutdown with :meth:`shutdown`.
    """

    def __init__(self, endpoint: Endpoint, *, default_headers: Any = ()) -> None:
        self.endpoint = endpoint
        self._default_headers = [(_text(n), _text(v)) for n, v in default_headers]
        self._started = False
        self._connect_sent = False
        # The disconnect event, once the application may no longer use the
        # connection; _done: because of what the application itself sent.
        self._disconnect: dict[str, Any] | None = None
        self._disconnect_taken = False
        self._done = False
        # A websocket.http.response.start, waiting for its body.
        self._response: tuple[int, list[tuple[str, str]]] | None = None
        self._body = bytearray()
        self._log_prefix = ""

    # ---------------------------------------------------------------- starting

    def start(self, now: float) -> bool:
        """Whether to start the application now: ``True`` once, when a valid
        handshake request has arrived. An invalid one is answered here (400,
        or 426 for another WebSocket version) and never reaches the
        application."""
        request = self.endpoint.request
        if self._started or request is None or self.endpoint.state is not _CONNECTING:
            return False
        self._started = True
        if request.error is not None:
            self.endpoint.answer(None, now)  # the standard error response
            return False
        return True

    def scope(
        self,
        *,
        scheme: str,
        server: tuple[str, int | None] | None,
        client: tuple[str, int] | None,
        root_path: str = "",
        asgi_version: str = "3.0",
        state: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ASGI ``websocket`` scope of the request (after :meth:`start`
        said to run the application): ``path`` percent-decoded under
        ``root_path``, ``raw_path`` as sent, headers as lower-case bytes
        pairs in the order received, the offered subprotocols."""
        request = self.endpoint.request
        if request is None:
            raise ValueError("no request has arrived")
        raw_path, _, query = request.path.partition("?")
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in request.headers
        ]
        path = root_path + unquote(raw_path)
        host = f"{client[0]}:{client[1]}" if client else "-"
        self._log_prefix = f'{host} - "WebSocket {path}{"?" + query if query else ""}"'
        return {
            "type": "websocket",
            "asgi": {"version": asgi_version, "spec_version": SPEC_VERSION},
            "http_version": "1.1",
            "scheme": scheme,
            "server": server,
            "client": client,
            "root_path": root_path,
            "path": path,
            "raw_path": root_path.encode("latin-1") + raw_path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "headers": headers,
            "subprotocols": list(request.subprotocols),
            "state": {} if state is None else state,
            "extensions": {"websocket.http.response": {}},
        }

    # ---------------------------------------------------------------- receive

    def receive(self, clock: Clock) -> Procedure[dict[str, Any]]:
        """The procedure of the application's ``receive()``: the next event,
        waiting for one."""
        while (event := self.next_event(clock())) is None:
            yield WaitFor(Wait.MESSAGE)
        return event

    def next_event(self, now: float) -> dict[str, Any] | None:
        """The next event for ``receive()`` if there is one now, else
        ``None`` (what :meth:`receive` waits for); a driver may call it
        first to spare an event that is ready the procedure's cost."""
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        endpoint = self.endpoint
        if self._disconnect is None or endpoint.queued_messages:
            # Before the answer this finds no message (None: wait), or that
            # the connection was lost (the disconnect).
            try:
                message = endpoint.next_message(now)
            except ConnectionClosed as exc:
                if self._disconnect is None:
                    reason = None if exc.code == 1006 else exc.reason
                    self._disconnect = _disconnect(exc.code, reason)
                message = None
            if message is not None:
                if isinstance(message, str):
                    return {"type": "websocket.receive", "text": message}
                return {"type": "websocket.receive", "bytes": message}
            if self._disconnect is None:
                return None
        if self._disconnect_taken:
            raise endpoint.closed_error()
        self._disconnect_taken = True
        return self._disconnect

    def _disconnected(self, event: dict[str, Any]) -> None:
        # A receive() already waiting must return it now.
        if self._disconnect is None:
            self._disconnect = event
            self.endpoint.wake(Wait.MESSAGE)

    # ---------------------------------------------------------------- send

    def send(self, message: Mapping[str, Any], clock: Clock) -> Procedure[Report | None]:
        """The procedure of the application's ``send(message)``: waits while
        the write buffer is above ``write_limit``, then acts. Returns the
        line to log for an answer to the handshake (at INFO), if it was one.

        Raises:
            UnexpectedMessage: The message is not allowed now, or malformed.
            ConnectionClosed: The connection closed (the peer left, or it
                was refused or shut down) before the application sent this.
            LocalProtocolError: An invalid close code or reason, subprotocol
                or header.
        """
        while not self.endpoint.ready(Wait.DRAINED):
            yield WaitFor(Wait.DRAINED)
        report = self.act(message, clock())
        self.endpoint.dirty = True  # the runner writes what act() queued
        return report

    def act(self, message: Mapping[str, Any], now: float) -> Report | None:
        """What :meth:`send` does once the buffer is below ``write_limit``
        (``endpoint.ready(Wait.DRAINED)``); a driver may call it directly
        then, to spare the procedure's cost: afterwards it carries out the
        endpoint's actions if :attr:`~sansws.endpoint.Endpoint.dirty`, else
        it writes :meth:`~sansws.endpoint.Endpoint.data_to_send` (all a
        ``websocket.send`` does is queue bytes). Raises as :meth:`send`."""
        kind = message.get("type")
        endpoint = self.endpoint
        if kind == "websocket.send" and self._disconnect is None:
            state = endpoint.connection.state
            if state is _OPEN:  # hence no close or answer from the application yet
                self._send(message)
                return None
        if self._done:
            raise UnexpectedMessage(
                f"Unexpected ASGI message '{kind}', after sending 'websocket.close'."
            )
        if endpoint.state is _CLOSED or self._disconnect is not None:
            raise endpoint.closed_error()
        if self._response is not None:
            if kind != "websocket.http.response.body":
                raise UnexpectedMessage(
                    f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'."
                )
            body = message.get("body") or b""
            if not isinstance(body, bytes | bytearray | memoryview):
                raise UnexpectedMessage(f"the body must be bytes, not {type(body).__name__}")
            self._body += body
            if not message.get("more_body", False):
                self._send_response(now, by_application=True)
            return None
        if endpoint.state is _CONNECTING:
            return self._answer(kind, message, now)
        if kind == "websocket.send":
            self._send(message)
            return None
        if kind == "websocket.close":
            code = message.get("code") or 1000
            reason = message.get("reason") or ""
            endpoint.close(code, reason, now)
            self._done = True
            self._disconnected(_disconnect(code, reason))
            return None
        raise UnexpectedMessage(
            f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'."
        )

    def _send(self, message: Mapping[str, Any]) -> None:
        data = message.get("bytes")
        if data is None:
            data = message.get("text")
            if not isinstance(data, str):
                raise UnexpectedMessage(
                    "a 'websocket.send' message needs 'bytes' (bytes) or 'text' (str)"
                )
        elif not isinstance(data, bytes | bytearray | memoryview):
            raise UnexpectedMessage(f"'bytes' must be bytes, not {type(data).__name__}")
        self.endpoint.send(data)  # only queues bytes: see Endpoint.data_to_send

    def _answer(self, kind: object, message: Mapping[str, Any], now: float) -> Report:
        endpoint = self.endpoint
        if kind == "websocket.accept":
            headers = [(_text(n), _text(v)) for n, v in message.get("headers") or ()]
            endpoint.answer(
                None,
                now,
                subprotocol=message.get("subprotocol"),
                extra_headers=self._default_headers + headers,
            )
            return self._logged("[accepted]")
        if kind == "websocket.close":
            endpoint.answer(Response(403, self._default_headers), now)
            self._refused(by_application=True)
            return self._logged("403")
        if kind == "websocket.http.response.start":
            status = message.get("status")
            if not isinstance(status, int) or not 200 <= status <= 599 or status == 101:
                raise UnexpectedMessage(f"Invalid HTTP status code '{status}' in response.")
            headers = [(_text(n), _text(v)) for n, v in message.get("headers") or ()]
            self._response = (status, self._default_headers + headers)
            return self._logged(str(status))
        raise UnexpectedMessage(
            "Expected ASGI message 'websocket.accept', 'websocket.close' or "
            f"'websocket.http.response.start' but got '{kind}'."
        )

    def _send_response(self, now: float, *, by_application: bool) -> None:
        assert self._response is not None
        (status, headers), body = self._response, bytes(self._body)
        # Forgotten first: a response the core refuses to send (a 204 with
        # a body, an unsafe header) raises here, and the application's end
        # then answers 500 instead of trying it again.
        self._response, self._body = None, bytearray()
        self.endpoint.answer(Response(status, headers, body), now)
        self._refused(by_application=by_application)

    def _refused(self, *, by_application: bool) -> None:
        # By the application: what it sends next is out of turn. Otherwise
        # (a shutdown) it learns that the connection is gone.
        self._done = by_application
        self._disconnected(_disconnect(1006))

    def _logged(self, outcome: str) -> Report:
        return Report(logging.INFO, f"{self._log_prefix} {outcome}")

    # ---------------------------------------------------------------- the end

    def finished(self, error: BaseException | None, result: object, now: float) -> Report | None:
        """The application returned ``result`` or raised ``error``: answer a
        handshake it left unanswered (500; a response it started is sent
        with the body it gave), leave an open connection it did not close
        (the peer sees 1006 once what was sent is written). Returns what to
        log at ERROR, if anything: not an error that only says the
        connection had closed."""
        report = None
        if error is not None and not _closed(error):
            report = Report(logging.ERROR, "Exception in ASGI application\n", error)
        elif error is None and self.endpoint.state is _CONNECTING and self._response is None:
            report = Report(logging.ERROR, "ASGI callable returned without completing handshake.")
        elif error is None and result is not None:
            message = f"ASGI callable should return None, but returned '{result}'."
            report = Report(logging.ERROR, message)
        endpoint = self.endpoint
        state = endpoint.state
        if state is _CONNECTING:
            if self._response is not None:
                with contextlib.suppress(LocalProtocolError):  # then the 500 below
                    self._send_response(now, by_application=True)
            if endpoint.state is _CONNECTING and endpoint.request is not None:
                endpoint.answer(Response(500, self._default_headers, _ERROR_BODY), now)
                self._refused(by_application=True)
        elif state is _OPEN:
            endpoint.leave(now)
        return report

    def shutdown(self, now: float) -> None:
        """The server is going away: an open connection closes with 1012
        (service restart) and the application gets ``{"code": 1012}`` at
        once; one whose close handshake is under way stops waiting for the
        peer; an unanswered handshake is refused with 503 (a response the
        application started is sent as it is) and the application gets
        ``{"code": 1006}``; what it sends afterwards raises
        :class:`~sansws.errors.ConnectionClosed`."""
        endpoint = self.endpoint
        state = endpoint.state
        if state is _OPEN:
            endpoint.close(1012, "", now)
            self._disconnected(_disconnect(1012))
        elif state is _CLOSING:
            endpoint.leave(now)
        elif state is _CONNECTING:
            if self._response is not None:
                with contextlib.suppress(LocalProtocolError):
                    self._send_response(now, by_application=False)
            if endpoint.state is _CONNECTING and endpoint.request is not None:
                body = b"The server is shutting down.\n"
                endpoint.answer(Response(503, self._default_headers, body), now)
                self._refused(by_application=False)
            else:
                endpoint.abort(now)


def _closed(error: BaseException) -> bool:
    # A driver may raise its server's own exception from ConnectionClosed.
    return isinstance(error, ConnectionClosed) or isinstance(error.__cause__, ConnectionClosed)

