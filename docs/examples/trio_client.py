"""A client on the trio driver: sends a message, prints the answer and the
round-trip time of a Ping, and closes."""

import sys

import trio
from sansws.drivers.trio import connect


async def hello(url: str) -> None:
    async with connect(url) as ws:
        await ws.send("Hello!")
        print("received:", await ws.recv())
        waiter = await ws.ping()
        latency = await waiter.wait()
        print(f"ping: {latency * 1000:.1f} ms")
    print("closed with", ws.close_code)


if __name__ == "__main__":
    trio.run(hello, sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765/")
