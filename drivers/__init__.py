"""Drivers: sansws connections over real transports.

``sansws.drivers.sync`` (threads and blocking sockets), ``sansws.drivers.asyncio``
and ``sansws.drivers.trio`` each offer ``connect()`` and ``serve()`` with the
same options and the same connection methods. They only move bytes and decide
how to wait; every protocol decision is made by the sans-I/O core.
"""
