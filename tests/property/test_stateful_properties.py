"""A ClientConnection and a ServerConnection wired together in memory, driven
by random sends, pings, closes and partial byte transfers.

Whatever the order, every message sent arrives intact and in order, every
Ping is answered (RFC 6455 section 5.5.2), only Pongs follow a Close
(section 5.5.1), a refused call queues nothing, and once all bytes are
exchanged the close handshake completes: both sides CLOSED, cleanly, each
with the code of the Close frame it received (section 7.1.5), the same one
on both sides unless both started closing at once, and the server closed
the transport first (section 7.1.1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from inmemory import URL, join

from sansws import ClientConnection, Connection, ServerConnection, State
from sansws.errors import InvalidState, LocalProtocolError
from sansws.events import Accepted, Closed, Event, Message, Ping, Pong, Request
from sansws.frames import Frame, Opcode, parse_close_payload, parse_frame
from sansws.testing import messages

Side = Literal["client", "server"]
SIDES: tuple[Side, Side] = ("client", "server")
sides = st.sampled_from(SIDES)
ALL = 1 << 30
STATE_ORDER = [State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED]


def other(side: Side) -> Side:
    return "server" if side == "client" else "client"


def send(connection: Connection, data: str | bytes, final: bool = True) -> None:
    if isinstance(data, str):
        connection.send_text(data, final=final)
    else:
        connection.send_binary(data, final=final)


class ClientServer(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # No timers: time never passes here, so none would fire anyway.
        self.conn: dict[Side, Connection] = {
            "client": ClientConnection(
                URL, ping_interval=None, open_timeout=None, close_timeout=None
            ),
            "server": ServerConnection(ping_interval=None, open_timeout=None, close_timeout=None),
        }
        self.last_state = {side: State.CONNECTING for side in SIDES}
        # Bytes written by a side and not yet delivered; whether it closed its
        # transport, and whether the peer has seen that end of stream.
        self.wire: dict[Side, bytes] = {side: b"" for side in SIDES}
        self.transport_closed = {side: False for side in SIDES}
        self.eof_delivered = {side: False for side in SIDES}
        # Frames each side wrote, parsed from its output after the HTTP head.
        self.out_buffer: dict[Side, bytes] = {side: b"" for side in SIDES}
        self.head_done = {side: False for side in SIDES}
        self.written: dict[Side, list[tuple[Frame, bool]]] = {side: [] for side in SIDES}
        # The model: what each side sent and what it should have received.
        self.sent: dict[Side, list[str | bytes]] = {side: [] for side in SIDES}
        self.fragments: dict[Side, list[str | bytes] | None] = {side: None for side in SIDES}
        self.received: dict[Side, list[str | bytes]] = {side: [] for side in SIDES}
        self.pings_sent: dict[Side, list[bytes]] = {side: [] for side in SIDES}
        self.pings_received: dict[Side, list[bytes]] = {side: [] for side in SIDES}
        self.pongs_due: dict[Side, list[bytes]] = {side: [] for side in SIDES}
        self.pongs_received: dict[Side, list[bytes]] = {side: [] for side in SIDES}
        self.close_written: dict[Side, tuple[int | None, str] | None] = {s: None for s in SIDES}
        self.pongs_before_close: dict[Side, int | None] = {side: None for side in SIDES}
        self.closed: dict[Side, Closed | None] = {side: None for side in SIDES}
        self.initiators: list[Side] = []

    # ------------------------------------------------------------ plumbing

    def pull(self, side: Side) -> None:
        data = self.conn[side].data_to_send()
        self.wire[side] += data
        buffer = self.out_buffer[side] + data
        if not self.head_done[side]:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.out_buffer[side] = buffer
                return
            buffer = buffer[end + 4 :]
            self.head_done[side] = True
        while (parsed := parse_frame(buffer)) is not None:
            frame, masked, consumed = parsed
            self.written[side].append((frame, masked))
            buffer = buffer[consumed:]
        self.out_buffer[side] = buffer

    def settle(self) -> None:
        """Collect output; close a transport when the core says so."""
        for side in SIDES:
            self.pull(side)
            if self.conn[side].should_close_transport:
                self.transport_closed[side] = True

    def deliver(self, source: Side, amount: int) -> None:
        self.pull(source)
        target = other(source)
        chunk, self.wire[source] = self.wire[source][:amount], self.wire[source][amount:]
        if chunk:
            self.handle(target, self.conn[target].receive_data(chunk))
        ended = self.transport_closed[source] and not self.eof_delivered[source]
        if ended and not self.wire[source]:
            self.eof_delivered[source] = True
            self.handle(target, self.conn[target].receive_data(b""))
        self.settle()

    def exchange_all(self) -> None:
        for _ in range(20):
            for side in SIDES:
                self.deliver(side, ALL)
            done = all(
                not self.wire[side]
                and (self.eof_delivered[side] or not self.transport_closed[side])
                for side in SIDES
            )
            if done:
                return
        raise AssertionError("the connections keep talking")

    def handle(self, side: Side, events: list[Event]) -> None:
        peer = other(side)
        connection = self.conn[side]
        for event in events:
            if isinstance(event, Request):
                assert side == "server"
                assert event.error is None
                assert isinstance(connection, ServerConnection)
                assert connection.accept() == []
            elif isinstance(event, Accepted):
                assert side == "client"
            elif isinstance(event, Message):
                self.received[side].append(event.data)
            elif isinstance(event, Ping):
                self.pings_received[side].append(event.data)
                # RFC 6455 section 5.5.2: "Upon receipt of a Ping frame, an
                # endpoint MUST send a Pong frame in response, unless it
                # already received a Close frame." (Nothing is processed
                # after a Close is received.)
                self.pongs_due[side].append(event.data)
            elif isinstance(event, Pong):
                self.pongs_received[side].append(event.data)
            elif isinstance(event, Closed):
                assert event.clean, event
                assert event.error is None, event
                close = self.close_written[peer]
                assert close is not None, "closed without a Close frame from the peer"
                code, reason = close
                assert (event.code, event.reason) == (1005 if code is None else code, reason)
                self.closed[side] = event
                if self.close_written[side] is None:
                    # The reply echoes the code and the reason.
                    self.close_written[side] = (code, reason)
                    self.pongs_before_close[side] = len(self.pongs_due[side])
            else:
                raise AssertionError(f"unexpected event {event!r}")

    # ------------------------------------------------------------ rules

    @contextlib.contextmanager
    def refused(self, side: Side, error: type[Exception]) -> Iterator[None]:
        self.pull(side)
        with pytest.raises(error):
            yield
        # A refused call queues nothing (sansws.errors.LocalProtocolError).
        assert self.conn[side].data_to_send() == b""

    @rule(side=sides, message=messages(max_size=300))
    def send_message(self, side: Side, message: str | bytes) -> None:
        connection = self.conn[side]
        fragments = self.fragments[side]
        if connection.state is not State.OPEN:
            with self.refused(side, InvalidState):
                send(connection, message)
        elif fragments is not None and type(fragments[0]) is not type(message):
            with self.refused(side, LocalProtocolError):
                send(connection, message)
        else:
            # With a fragmented message in progress, this finishes it.
            send(connection, message)
            self.sent[side].append(join([*(fragments or []), message]))
            self.fragments[side] = None
        self.settle()

    @rule(side=sides, part=messages(max_size=200), final=st.booleans())
    def send_fragment(self, side: Side, part: str | bytes, final: bool) -> None:
        connection = self.conn[side]
        fragments = self.fragments[side]
        if connection.state is not State.OPEN:
            with self.refused(side, InvalidState):
                send(connection, part, final)
        elif fragments is not None and type(fragments[0]) is not type(part):
            with self.refused(side, LocalProtocolError):
                send(connection, part, final)
        else:
            send(connection, part, final)
            parts = [*(fragments or []), part]
            if final:
                self.sent[side].append(join(parts))
                self.fragments[side] = None
            else:
                self.fragments[side] = parts
        self.settle()

    @rule(side=sides, payload=st.binary(max_size=125))
    def ping(self, side: Side, payload: bytes) -> None:
        connection = self.conn[side]
        if connection.state is not State.OPEN:
            with self.refused(side, InvalidState):
                connection.send_ping(payload)
        else:
            connection.send_ping(payload)
            self.pings_sent[side].append(payload)
        self.settle()

    @rule(side=sides, payload=st.binary(max_size=125))
    def unsolicited_pong(self, side: Side, payload: bytes) -> None:
        connection = self.conn[side]
        if connection.state is not State.OPEN:
            with self.refused(side, InvalidState):
                connection.send_pong(payload)
        else:
            connection.send_pong(payload)
            self.pongs_due[side].append(payload)
        self.settle()

    @rule(
        side=sides,
        code=st.sampled_from([1000, 1001, 1003, 1011, 3000, 4999, None]),
        reason=st.text(max_size=20),
    )
    def close(self, side: Side, code: int | None, reason: str) -> None:
        connection = self.conn[side]
        if connection.state is State.CONNECTING:
            return  # that would abort the handshake: not what is tested here
        reason = "" if code is None else reason
        self.pull(side)
        was_open = connection.state is State.OPEN
        connection.close(code, reason)
        if was_open:
            self.close_written[side] = (code, reason)
            self.pongs_before_close[side] = len(self.pongs_due[side])
            self.fragments[side] = None  # never finished
            self.initiators.append(side)
        else:
            assert connection.data_to_send() == b"", "close() is a no-op once closing"
        self.settle()

    @rule(side=sides, amount=st.integers(1, 100) | st.just(ALL))
    def transfer(self, side: Side, amount: int) -> None:
        self.deliver(side, amount)

    # ------------------------------------------------------------ invariants

    @invariant()
    def states_only_move_forward(self) -> None:
        for side in SIDES:
            state = self.conn[side].state
            assert STATE_ORDER.index(state) >= STATE_ORDER.index(self.last_state[side])
            self.last_state[side] = state

    @invariant()
    def messages_arrive_intact_and_in_order(self) -> None:
        for side in SIDES:
            received = self.received[side]
            assert received == self.sent[other(side)][: len(received)]

    @invariant()
    def pings_arrive_in_order_and_pongs_answer_them(self) -> None:
        for side in SIDES:
            peer = other(side)
            pings = self.pings_received[side]
            assert pings == self.pings_sent[peer][: len(pings)]
            pongs = self.pongs_received[side]
            assert pongs == self.pongs_due[peer][: len(pongs)]

    @invariant()
    def frames_are_masked_by_clients_only_and_pongs_are_written_when_due(self) -> None:
        for side in SIDES:
            written = self.written[side]
            assert all(masked is (side == "client") for _, masked in written)
            pongs = [frame.payload for frame, _ in written if frame.opcode == Opcode.PONG]
            assert pongs == self.pongs_due[side][: len(pongs)]
            # Only what is still queued (not yet pulled) may be missing.
            assert len(pongs) == len(self.pongs_due[side])

    @invariant()
    def only_pongs_follow_a_close(self) -> None:
        # No data frame after a Close (RFC 6455 section 5.5.1), and no new
        # Ping; Pongs still answer Pings (section 5.5.2).
        for side in SIDES:
            opcodes = [frame.opcode for frame, _ in self.written[side]]
            if Opcode.CLOSE in opcodes:
                after = opcodes[opcodes.index(Opcode.CLOSE) + 1 :]
                assert all(opcode == Opcode.PONG for opcode in after), opcodes

    # ------------------------------------------------------------ the end

    def teardown(self) -> None:
        self.exchange_all()
        for side in SIDES:
            peer = other(side)
            assert self.received[side] == self.sent[peer]
            assert self.pings_received[side] == self.pings_sent[peer]
        if not self.initiators:
            # Nobody closed yet: the client does, and the handshake must
            # still complete.
            self.close("client", 1000, "done")
        self.exchange_all()
        for side in SIDES:
            peer = other(side)
            connection = self.conn[side]
            assert connection.state is State.CLOSED
            closed = self.closed[side]
            assert closed is not None
            assert closed.clean
            assert connection.close_code == closed.code
            # A side sees every Pong its peer wrote before its Close.
            before_close = self.pongs_before_close[peer]
            assert before_close is not None
            assert self.pongs_received[side] == self.pongs_due[peer][:before_close]
            # Every Close frame written carries what the model says.
            [close] = [frame for frame, _ in self.written[side] if frame.opcode == Opcode.CLOSE]
            written = self.close_written[side]
            assert written is not None
            assert parse_close_payload(close.payload) == (
                (1005, "") if written[0] is None else written
            )
        client, server = self.closed["client"], self.closed["server"]
        assert client is not None
        assert server is not None
        if len(self.initiators) == 1:
            assert client.code == server.code
        # The server closes the transport; the client closes its own once it
        # sees the end of the stream (RFC 6455 section 7.1.1).
        assert self.transport_closed["server"]
        assert self.eof_delivered["server"]
        assert self.conn["client"].should_close_transport


TestClientServer = ClientServer.TestCase
# Runs are short and cheap; the interesting interleavings need many of them.
_profile = settings()
TestClientServer.settings = settings(
    _profile, max_examples=4 * _profile.max_examples, stateful_step_count=30
)
