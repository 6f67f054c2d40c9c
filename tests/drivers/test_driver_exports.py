"""Every driver module exports the same public names (docs/drivers/rules.md)."""

from __future__ import annotations

import importlib

import sansws.errors

MODULES = ("sync", "asyncio", "trio")


def test_every_driver_exports_the_same_names() -> None:
    modules = {name: importlib.import_module(f"sansws.drivers.{name}") for name in MODULES}
    exported = {name: set(module.__all__) for name, module in modules.items()}
    assert exported["sync"] == exported["asyncio"] == exported["trio"]
    expected = {"Connection", "Handler", "PingWaiter", "ProcessRequest", "Server"}
    expected |= {"connect", "serve", "Request", "Response", *sansws.errors.__all__}
    expected |= {"Router", "basic_auth", "broadcast"}
    assert exported["sync"] == expected


def test_every_exported_name_exists_and_the_exceptions_are_the_cores() -> None:
    for name in MODULES:
        module = importlib.import_module(f"sansws.drivers.{name}")
        for exported in module.__all__:
            assert hasattr(module, exported), (name, exported)
        for error in sansws.errors.__all__:
            assert getattr(module, error) is getattr(sansws.errors, error)
