"""WebSocket extensions: the interface the connection uses, and
permessage-deflate (RFC 7692)."""

from .base import ClientExtensionFactory, Extension, ExtensionParams, ServerExtensionFactory
from .permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    PerMessageDeflateExtension,
    ServerPerMessageDeflateFactory,
)

__all__ = [
    "ClientExtensionFactory",
    "ClientPerMessageDeflateFactory",
    "Extension",
    "ExtensionParams",
    "PerMessageDeflate",
    "PerMessageDeflateExtension",
    "ServerExtensionFactory",
    "ServerPerMessageDeflateFactory",
]
