"""permessage-deflate (RFC 7692): per-message compression with DEFLATE.

Three pieces, as for every extension (see :mod:`sansws.extensions.base`):

* :class:`PerMessageDeflate` holds the settings a user chooses: the four
  negotiated parameters and the local compressor settings (level, memory
  level, threshold). It is what ``compression=`` accepts.
* :class:`ClientPerMessageDeflateFactory` turns one or more settings into
  offers, most preferred first, and checks the server's answer against them;
  :class:`ServerPerMessageDeflateFactory` answers the first acceptable offer.
* :class:`PerMessageDeflateExtension` is the negotiated extension: it
  compresses outgoing messages and decompresses incoming ones for one
  connection.

The four parameters mean the same thing in both roles: an upper bound the
connection will respect. ``server_max_window_bits=10`` makes the server
compress with at most a 1 KiB window whether a client asks for it or a server
imposes it; ``client_no_context_takeover`` makes the client compress each
message on its own.

Decompression is bounded: :meth:`PerMessageDeflateExtension.decode` asks zlib
for at most the remaining message budget plus one byte, so a message that
would inflate beyond ``max_message_size`` is refused (close code 1009) after
allocating no more than about that limit.

zlib cannot compress raw DEFLATE with an 8-bit (256-byte) window: since zlib
1.2.9 ``compressobj(wbits=-8)`` is refused, and older versions silently used
9 bits, producing data a strict 8-bit decompressor rejects. When the peer
limits our window to 8 bits, sansws compresses with zlib's ``Z_RLE``
strategy, whose only back-references are to the previous byte, so every
stream it produces is valid for any window size. Compression is weaker but
the negotiation succeeds. Incoming data for an 8-bit window is inflated with
a 9-bit window, which accepts everything a correct peer sends and tolerates
peers running old zlib versions.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import NegotiationError, PayloadTooBig, ProtocolError
from ..headers import ExtensionOffer, build_extension_list
from .base import (
    UNCHANGED,
    ClientExtensionFactory,
    Extension,
    ExtensionParams,
    ServerExtensionFactory,
)

__all__ = [
    "ClientPerMessageDeflateFactory",
    "PerMessageDeflate",
    "PerMessageDeflateExtension",
    "ServerPerMessageDeflateFactory",
    "client_extension_factories",
    "server_extension_factories",
]

NAME = "permessage-deflate"

# A sync flush ends with the LEN/NLEN of an empty stored block; RFC 7692
# section 7.2.1 removes them from every message and 7.2.2 puts them back.
_TAIL = b"\x00\x00\xff\xff"

_SERVER_NO_CONTEXT_TAKEOVER = "server_no_context_takeover"
_CLIENT_NO_CONTEXT_TAKEOVER = "client_no_context_takeover"
_SERVER_MAX_WINDOW_BITS = "server_max_window_bits"
_CLIENT_MAX_WINDOW_BITS = "client_max_window_bits"

# RFC 7692 section 7.1.2: a decimal integer from 8 to 15 without leading zeros.
_WINDOW_BITS_VALUES = {str(bits): bits for bits in range(8, 16)}

# Below this size, appending the tail to the payload (a copy) is cheaper than
# a second call into zlib.
_JOIN_TAIL_BELOW = 2048


def _check_window_bits(name: str, value: int | None) -> None:
    if value is not None and not 8 <= value <= 15:
        raise ValueError(f"{name} must be between 8 and 15 or None, not {value!r}")


@dataclass(frozen=True, slots=True)
class PerMessageDeflate:
    """Settings for permessage-deflate compression (RFC 7692).

    Pass one to ``compression=`` on :class:`~sansws.ClientConnection` or
    :class:`~sansws.ServerConnection`. ``compression="deflate"`` (the
    default) uses ``PerMessageDeflate()`` for a client and
    ``PerMessageDeflate(server_max_window_bits=12)`` for a server, the same
    defaults as websockets.

    The four negotiated parameters are upper bounds that hold whichever side
    sets them (RFC 7692 section 7.1). A client offers them; a server imposes
    them on whatever the client offers.

    Attributes:
        server_max_window_bits: Largest LZ77 window, as a power of two (8 to
            15), the server compresses with. ``None``: no bound (15).
        client_max_window_bits: Largest window the client compresses with.
            ``None``: a client lets the server choose (it offers the
            parameter without a value); a server leaves the client's choice
            alone.
        server_no_context_takeover: The server compresses each message
            independently, so neither side keeps the server's window between
            messages (saves the client's decompressor memory, costs ratio).
        client_no_context_takeover: The same for the client's messages.
        level: zlib compression level, 0 (store) to 9 (best); default 6.
        memory_level: zlib memory level, 1 to 9 (default 5, as websockets:
            about 16 KiB of compressor state instead of 128 KiB at 8, for a
            small loss of ratio).
        threshold: Messages shorter than this many bytes are sent
            uncompressed (default 128). Applies to whole messages; a
            fragmented message is always compressed.
    """

    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    level: int = 6
    memory_level: int = 5
    threshold: int = 128

    def __post_init__(self) -> None:
        _check_window_bits("server_max_window_bits", self.server_max_window_bits)
        _check_window_bits("client_max_window_bits", self.client_max_window_bits)
        if not 0 <= self.level <= 9:
            raise ValueError(f"level must be between 0 and 9, not {self.level!r}")
        if not 1 <= self.memory_level <= 9:
            raise ValueError(f"memory_level must be between 1 and 9, not {self.memory_level!r}")
        if self.threshold < 0:
            raise ValueError(f"threshold must be >= 0, not {self.threshold!r}")


Compression = Literal["deflate"] | PerMessageDeflate | None
"""What ``compression=`` accepts: ``"deflate"`` for the role's default
settings, a :class:`PerMessageDeflate`, or ``None`` to turn compression off."""

DEFAULT_CLIENT = PerMessageDeflate()
"""The client's settings for ``compression="deflate"``."""

DEFAULT_SERVER = PerMessageDeflate(server_max_window_bits=12)
"""The server's settings for ``compression="deflate"``: a 4 KiB compression
window keeps the server's per-connection memory low."""


@dataclass(frozen=True, slots=True)
class _Params:
    """The four parameters of one offer or response, parsed and validated.
    ``client_max_window_bits`` is ``True`` for the value-less form."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | Literal[True] | None = None

    def build(self) -> ExtensionParams:
        params: list[tuple[str, str | None]] = []
        if self.server_no_context_takeover:
            params.append((_SERVER_NO_CONTEXT_TAKEOVER, None))
        if self.client_no_context_takeover:
            params.append((_CLIENT_NO_CONTEXT_TAKEOVER, None))
        if self.server_max_window_bits is not None:
            params.append((_SERVER_MAX_WINDOW_BITS, str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            params.append((_CLIENT_MAX_WINDOW_BITS, None))
        elif self.client_max_window_bits is not None:
            params.append((_CLIENT_MAX_WINDOW_BITS, str(self.client_max_window_bits)))
        return tuple(params)


def _refuse(params: ExtensionParams, msg: str) -> NegotiationError:
    return NegotiationError("Sec-WebSocket-Extensions", build_extension_list([(NAME, params)]), msg)


def _parse_params(params: ExtensionParams, *, offer: bool) -> _Params:
    """Validate the syntax of an offer's or a response's parameters.

    Raises:
        NegotiationError: Unknown, duplicate or malformed parameter.
    """
    seen: set[str] = set()
    flags = {_SERVER_NO_CONTEXT_TAKEOVER: False, _CLIENT_NO_CONTEXT_TAKEOVER: False}
    bits: dict[str, int | Literal[True] | None] = {
        _SERVER_MAX_WINDOW_BITS: None,
        _CLIENT_MAX_WINDOW_BITS: None,
    }
    for name, value in params:
        if name in seen:
            raise _refuse(params, f"duplicate parameter {name}")
        seen.add(name)
        if name in flags:
            if value is not None:
                raise _refuse(params, f"{name} takes no value")
            flags[name] = True
        elif name in bits:
            if value is None:
                # Only a client's offer may leave client_max_window_bits
                # without a value (RFC 7692 section 7.1.2.2).
                if not (offer and name == _CLIENT_MAX_WINDOW_BITS):
                    raise _refuse(params, f"{name} needs a value")
                bits[name] = True
            elif value in _WINDOW_BITS_VALUES:
                bits[name] = _WINDOW_BITS_VALUES[value]
            else:
                raise _refuse(params, f"{name} must be an integer from 8 to 15")
        else:
            raise _refuse(params, f"unknown parameter {name}")
    server_bits = bits[_SERVER_MAX_WINDOW_BITS]
    assert server_bits is not True
    return _Params(
        flags[_SERVER_NO_CONTEXT_TAKEOVER],
        flags[_CLIENT_NO_CONTEXT_TAKEOVER],
        server_bits,
        bits[_CLIENT_MAX_WINDOW_BITS],
    )


def _min_bits(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class PerMessageDeflateExtension(Extension):
    """permessage-deflate as negotiated for one connection.

    Built by the factories; applications see it only through
    ``connection.extensions``.

    Args:
        params: The parameters of the server's response, as agreed.
        local_no_context_takeover: Reset our compressor after each message.
        remote_no_context_takeover: The peer resets its compressor after each
            message, so our decompressor need not be kept between messages.
        local_max_window_bits: Our compressor's window, 8 to 15.
        remote_max_window_bits: The peer's compressor's window, 8 to 15.
        settings: Level, memory level and threshold for compressing.
    """

    name = NAME
    rsv_mask = 0x40  # RSV1 marks a compressed message (RFC 7692 section 6)

    def __init__(
        self,
        params: ExtensionParams,
        *,
        local_no_context_takeover: bool,
        remote_no_context_takeover: bool,
        local_max_window_bits: int,
        remote_max_window_bits: int,
        settings: PerMessageDeflate,
    ) -> None:
        self.params = params
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_max_window_bits = local_max_window_bits
        self.remote_max_window_bits = remote_max_window_bits
        self.threshold = settings.threshold
        self._level = settings.level
        self._memory_level = settings.memory_level
        # See the module docstring for why 8 bits is special.
        self._decode_wbits = -max(remote_max_window_bits, 9)
        self._encoder: zlib._Compress | None = None
        self._decoder: zlib._Decompress | None = None
        # The peer ended its DEFLATE stream (a block with BFINAL set) inside
        # the message being received: the rest of that message is ignored.
        self._stream_ended = False

    def __repr__(self) -> str:
        return f"PerMessageDeflateExtension({build_extension_list([self.negotiated()])!r})"

    def negotiated(self) -> ExtensionOffer:
        return NAME, self.params

    # ------------------------------------------------------------ sending

    def _new_encoder(self) -> zlib._Compress:
        bits = self.local_max_window_bits
        if bits == 8:
            # Distance-1 matches only: valid for a 256-byte window.
            return zlib.compressobj(self._level, zlib.DEFLATED, -9, 1, zlib.Z_RLE)
        return zlib.compressobj(self._level, zlib.DEFLATED, -bits, self._memory_level)

    def shared_encoding(self, data: bytes) -> Hashable | None:
        if len(data) < self.threshold:
            return UNCHANGED
        if not self.local_no_context_takeover:
            return None  # the compressor remembers what it compressed before
        return (NAME, self.local_max_window_bits, self._level, self._memory_level)

    def encode(self, data: bytes, first: bool, final: bool) -> tuple[int, bytes]:
        # Only a whole message can be known to be small: a fragmented one is
        # compressed from its first fragment on.
        if first and final and len(data) < self.threshold:
            return 0, data
        encoder = self._encoder
        if encoder is None:
            encoder = self._encoder = self._new_encoder()
        out = encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)
        if final:
            # After compress(), even with no input, a sync flush always ends
            # with an empty stored block, whose LEN/NLEN the receiver appends.
            assert out[-4:] == _TAIL
            out = out[:-4]
            if self.local_no_context_takeover:
                self._encoder = None
        return (0x40 if first else 0), out

    # ------------------------------------------------------------ receiving

    def decode(self, data: bytes, rsv: int, final: bool, max_size: int | None) -> bytes:
        if self._stream_ended:
            self._stream_ended = not final
            return b""
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = zlib.decompressobj(wbits=self._decode_wbits)
        try:
            if final and len(data) < _JOIN_TAIL_BELOW:
                out = _inflate(decoder, data + _TAIL, max_size)
            else:
                out = _inflate(decoder, data, max_size)
                if final and not decoder.eof:
                    budget = None if max_size is None else max_size - len(out)
                    out += _inflate(decoder, _TAIL, budget)
        except zlib.error as exc:
            raise ProtocolError(1007, "invalid compressed data") from exc
        except PayloadTooBig as exc:
            # Count the whole piece's output against the whole budget (the
            # tail is inflated against what is left of it).
            assert max_size is not None
            raise PayloadTooBig(exc.size + max_size - exc.max_size, max_size) from None
        if decoder.eof:
            # RFC 7692 section 7.2.3.4 allows a final block; zlib keeps what
            # follows it in unused_data, which must not grow, so the rest of
            # the message is dropped and the next one gets a new decoder.
            self._decoder = None
            self._stream_ended = not final
        elif final and self.remote_no_context_takeover:
            self._decoder = None
        return out


# Most bytes one call into zlib may consume or produce when a budget applies.
# CPython assembles a call's output in blocks and then copies them into one
# bytes object, so one call asked for the whole budget would briefly hold
# twice the budget; it also copies unconsumed input after each call. Bounded
# steps keep the peak near the budget and the copying linear.
_STEP = 64 * 1024


def _inflate(decoder: zlib._Decompress, data: bytes, max_size: int | None) -> bytes:
    """Inflate ``data``, producing at most ``max_size`` bytes.

    Raises:
        PayloadTooBig: ``data`` inflates to more than ``max_size`` bytes; the
            error's ``size`` is how many bytes were produced, at least
            ``max_size + 1``.
        zlib.error: ``data`` is not valid DEFLATE data.
    """
    if max_size is None:
        return decoder.decompress(data)
    chunks: list[bytes] = []
    total = 0
    view = memoryview(data) if len(data) > _STEP else data
    for start in range(0, len(data) or 1, _STEP):
        pending: bytes | memoryview = view[start : start + _STEP] if view is not data else data
        while True:
            # One byte more than allowed proves a message too big as soon as
            # it appears: zlib never produces more than asked.
            step = min(max_size + 1 - total, _STEP)
            out = decoder.decompress(pending, step)
            total += len(out)
            if total > max_size:
                raise PayloadTooBig(total, max_size)
            chunks.append(out)
            if len(out) < step:
                break
            # The output filled the step: zlib may hold more.
            pending = decoder.unconsumed_tail
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _extension_from(
    response: ExtensionParams, params: _Params, settings: PerMessageDeflate, *, client: bool
) -> PerMessageDeflateExtension:
    """The extension for the agreed ``params``; ``response`` is what the
    server's response said, reported as the negotiated parameters."""
    server_bits = params.server_max_window_bits or 15
    client_bits = params.client_max_window_bits
    assert client_bits is not True
    client_bits = client_bits or 15
    return PerMessageDeflateExtension(
        response,
        local_no_context_takeover=(
            params.client_no_context_takeover if client else params.server_no_context_takeover
        ),
        remote_no_context_takeover=(
            params.server_no_context_takeover if client else params.client_no_context_takeover
        ),
        local_max_window_bits=client_bits if client else server_bits,
        remote_max_window_bits=server_bits if client else client_bits,
        settings=settings,
    )


class ClientPerMessageDeflateFactory(ClientExtensionFactory):
    """Offers permessage-deflate from a client.

    Each :class:`PerMessageDeflate` becomes one offer, in the order given
    (most preferred first). The server's response is matched against the
    offers in that order and the first it satisfies is used, with its
    compression settings.

    ``client_max_window_bits=None`` is offered as the value-less
    ``client_max_window_bits``: sansws compresses with any window the server
    picks, 8 bits included. Without settings, one offer with the defaults
    (``PerMessageDeflate()``) is made.
    """

    name = NAME

    def __init__(self, *settings: PerMessageDeflate) -> None:
        self.settings: tuple[PerMessageDeflate, ...] = settings or (DEFAULT_CLIENT,)

    def __repr__(self) -> str:
        return f"ClientPerMessageDeflateFactory{self.settings!r}"

    @staticmethod
    def _offer(settings: PerMessageDeflate) -> _Params:
        return _Params(
            settings.server_no_context_takeover,
            settings.client_no_context_takeover,
            settings.server_max_window_bits,
            settings.client_max_window_bits or True,
        )

    def offers(self) -> Sequence[ExtensionParams]:
        return [self._offer(settings).build() for settings in self.settings]

    def accept(self, params: ExtensionParams) -> Extension:
        response = _parse_params(params, offer=False)
        problems: list[str] = []
        for settings in self.settings:
            problem = self._mismatch(self._offer(settings), response)
            if problem is None:
                agreed = _Params(
                    response.server_no_context_takeover,
                    # A client that offered client_no_context_takeover keeps
                    # its word even if the server did not repeat it.
                    response.client_no_context_takeover or settings.client_no_context_takeover,
                    response.server_max_window_bits,
                    response.client_max_window_bits or settings.client_max_window_bits,
                )
                return _extension_from(params, agreed, settings, client=True)
            problems.append(problem)
        raise _refuse(params, "; ".join(dict.fromkeys(problems)))

    @staticmethod
    def _mismatch(offer: _Params, response: _Params) -> str | None:
        """Why ``response`` does not answer ``offer`` (RFC 7692 section 7.1),
        or ``None`` if it does."""
        if offer.server_no_context_takeover and not response.server_no_context_takeover:
            return "server_no_context_takeover was requested but not accepted"
        if offer.server_max_window_bits is not None:
            if response.server_max_window_bits is None:
                return "server_max_window_bits was requested but not accepted"
            if response.server_max_window_bits > offer.server_max_window_bits:
                return "server_max_window_bits is larger than requested"
        client_bits = response.client_max_window_bits
        if (
            client_bits is not None
            and offer.client_max_window_bits is not True
            and offer.client_max_window_bits is not None
            and client_bits > offer.client_max_window_bits
        ):
            return "client_max_window_bits is larger than offered"
        return None


class ServerPerMessageDeflateFactory(ServerExtensionFactory):
    """Negotiates permessage-deflate on a server.

    Accepts the first valid offer the client makes, narrowed by
    ``settings``: a window bound or a no-context-takeover flag in the
    settings is imposed on the offer (RFC 7692 allows the server to lower
    both window sizes, and to require either side not to take over context).
    Every valid offer is acceptable, since sansws compresses with any window
    from 8 to 15 bits.

    An offer with an unknown, duplicate or malformed parameter is declined,
    as RFC 7692 section 5 requires, and the next offer is considered; when
    none is valid the connection opens without compression.
    """

    name = NAME

    def __init__(self, settings: PerMessageDeflate = DEFAULT_SERVER) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return f"ServerPerMessageDeflateFactory({self.settings!r})"

    def negotiate(
        self, offers: Sequence[ExtensionParams]
    ) -> tuple[ExtensionParams, Extension] | None:
        for params in offers:
            try:
                offer = _parse_params(params, offer=True)
            except NegotiationError:
                continue  # declined (RFC 7692 section 5): try the next offer
            return self._answer(offer)
        return None

    def _answer(self, offer: _Params) -> tuple[ExtensionParams, Extension]:
        settings = self.settings
        client_bits = offer.client_max_window_bits
        if client_bits is True:
            # The client lets the server choose; without a bound, saying
            # nothing means 15.
            client_bits = settings.client_max_window_bits
        elif client_bits is not None:
            client_bits = _min_bits(client_bits, settings.client_max_window_bits)
        # A client that did not offer client_max_window_bits cannot be sent
        # one (RFC 7692 section 7.1.2.2): its window stays at 15.
        response = _Params(
            offer.server_no_context_takeover or settings.server_no_context_takeover,
            offer.client_no_context_takeover or settings.client_no_context_takeover,
            _min_bits(offer.server_max_window_bits, settings.server_max_window_bits),
            client_bits,
        )
        params = response.build()
        return params, _extension_from(params, response, settings, client=False)


def client_extension_factories(
    extensions: Iterable[ClientExtensionFactory], compression: Compression
) -> list[ClientExtensionFactory]:
    """The factories a client offers: ``extensions``, plus permessage-deflate
    per ``compression`` unless ``extensions`` already has a factory for it.

    Raises:
        ValueError: ``compression`` is not ``"deflate"``, a
            :class:`PerMessageDeflate` or ``None``.
    """
    factories = list(extensions)
    settings = _settings(compression, DEFAULT_CLIENT)
    if settings is not None and all(factory.name != NAME for factory in factories):
        factories.append(ClientPerMessageDeflateFactory(settings))
    return factories


def server_extension_factories(
    extensions: Iterable[ServerExtensionFactory], compression: Compression
) -> list[ServerExtensionFactory]:
    """The factories a server negotiates with: ``extensions``, plus
    permessage-deflate per ``compression`` unless ``extensions`` already has
    a factory for it.

    Raises:
        ValueError: ``compression`` is not ``"deflate"``, a
            :class:`PerMessageDeflate` or ``None``.
    """
    factories = list(extensions)
    settings = _settings(compression, DEFAULT_SERVER)
    if settings is not None and all(factory.name != NAME for factory in factories):
        factories.append(ServerPerMessageDeflateFactory(settings))
    return factories


def _settings(compression: object, default: PerMessageDeflate) -> PerMessageDeflate | None:
    if compression is None:
        return None
    if compression == "deflate":
        return default
    if isinstance(compression, PerMessageDeflate):
        return compression
    raise ValueError(
        f'compression must be "deflate", a PerMessageDeflate or None, not {compression!r}'
    )
