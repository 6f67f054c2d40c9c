"""Chat rooms on the asyncio driver: a router picks the handler by path,
basic_auth lets in known users only, select_subprotocol picks a protocol
version, and a health check answers plain HTTP. Ctrl+C stops it."""

import asyncio
from collections.abc import Sequence

from sansws.drivers.asyncio import Connection, Request, Response, Router, basic_auth, serve

USERS = [("alice", "wonderland"), ("bob", "builder")]
authenticate = basic_auth("chat", credentials=USERS)


async def room(ws: Connection) -> None:
    name = ws.path_params["room"]
    async for message in ws:
        await ws.send(f"{ws.username}@{name}: {message}")


async def stats(ws: Connection) -> None:
    await ws.send(f"route {ws.route}, subprotocol {ws.subprotocol}")


def check(ws: Connection, request: Request) -> Response | None:
    if request.path == "/healthz":
        return Response(200, body=b"OK\n")  # no route needed, no credentials
    return authenticate(ws, request)


def newest_version(ws: Connection, offered: Sequence[str]) -> str | None:
    versions = [p for p in offered if p.startswith("chat.v") and p[6:].isdigit()]
    return max(versions, key=lambda p: int(p[6:]), default=None)


router = Router({"/rooms/{room}": room, "/stats": stats})


async def main(port: int = 8765) -> None:
    async with serve(
        router, "127.0.0.1", port, process_request=check, select_subprotocol=newest_version
    ) as server:
        print(f"serving on port {server.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
