"""WebSocket extensions: the interface the connection uses, and
permessage-deflate (RFC 7692)."""

from .base import ClientExtensionFactory, Extension, ExtensionParams, ServerExtensionFactory

__all__ = ["ClientExtensionFactory", "Extension", "ExtensionParams", "ServerExtensionFactory"]
