"""The interface between the connection and a WebSocket extension.

An extension is negotiated in the opening handshake by a *factory* (one per
role) and then transforms message payloads. The connection calls it once per
frame's worth of payload, never per message, so that a large message is
processed as it arrives instead of after buffering all of it.

Only the reserved bits an extension declares in :attr:`Extension.rsv_mask` are
allowed on incoming frames; any other reserved bit fails the connection with
1002, as RFC 6455 section 5.2 requires.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Sequence
from typing import Final

from ..headers import ExtensionOffer

__all__ = [
    "UNCHANGED",
    "ClientExtensionFactory",
    "Extension",
    "ExtensionParams",
    "ServerExtensionFactory",
]

#: The :meth:`Extension.shared_encoding` key of data an extension sends as
#: it is (a message below permessage-deflate's threshold).
UNCHANGED: Final = "unchanged"

ExtensionParams = tuple[tuple[str, "str | None"], ...]
"""An extension's parameters: ``(name, value)`` pairs, value ``None`` when the
parameter has none."""


class Extension(abc.ABC):
    """A negotiated extension, owned by one connection."""

    #: The extension's registered name, e.g. ``"permessage-deflate"``.
    name: str
    #: The reserved bits (as in the first header byte, ``0x40`` is RSV1) this
    #: extension may set on the first frame of a message.
    rsv_mask: int = 0

    @abc.abstractmethod
    def negotiated(self) -> ExtensionOffer:
        """The extension and its parameters as agreed in the handshake."""

    @abc.abstractmethod
    def decode(self, data: bytes, rsv: int, final: bool, max_size: int | None) -> bytes:
        """Transform a piece of an incoming message.

        Called with the payload of each data frame, or a piece of it, in
        order. ``rsv`` holds the reserved bits of the message's first frame,
        ``final`` is true for the last piece of the message, and ``max_size``
        is the number of decoded bytes the message may still produce
        (``None``: no limit).

        Raises:
            PayloadTooBig: Decoding would exceed ``max_size``.
            ProtocolError: The data cannot be decoded.
        """

    @abc.abstractmethod
    def encode(self, data: bytes, first: bool, final: bool) -> tuple[int, bytes]:
        """Transform a piece of an outgoing message.

        Returns the reserved bits for the frame (meaningful on the first frame
        only) and the payload to send.
        """

    def shared_encoding(self, data: bytes) -> Hashable | None:
        """A key under which ``encode(data, True, True)`` gives the same
        result for every extension that returns the same key, and leaves
        this one as it was: a broadcast then encodes the message once for
        all of them. ``None`` (the default): this extension's encoding
        depends on what it encoded before, so it encodes its own copy.

        :data:`UNCHANGED` means the data is sent as it is, as without an
        extension.
        """
        return None


class ClientExtensionFactory(abc.ABC):
    """Offers an extension in a client's request and accepts the server's
    answer."""

    name: str

    @abc.abstractmethod
    def offers(self) -> Sequence[ExtensionParams]:
        """The offers to send, most preferred first, as parameter lists."""

    @abc.abstractmethod
    def accept(self, params: ExtensionParams) -> Extension:
        """Build the extension from the parameters in the server's response.

        Raises:
            NegotiationError: The response does not match any offer.
        """


class ServerExtensionFactory(abc.ABC):
    """Chooses whether and how to accept an extension a client offered."""

    name: str

    @abc.abstractmethod
    def negotiate(
        self, offers: Sequence[ExtensionParams]
    ) -> tuple[ExtensionParams, Extension] | None:
        """Pick one of the client's offers for this extension (in the client's
        order of preference) and return the response parameters and the
        extension, or ``None`` to decline them all.

        Raises:
            NegotiationError: An offer is malformed (duplicate or invalid
                parameters); the handshake fails with 400.
        """
