"""A Starlette chat echo on uvicorn, with sansws as its WebSocket protocol.

Run it with::

    uvicorn uvicorn_starlette:app --ws sansws.drivers.uvicorn:WebSocketProtocol
"""

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def echo(websocket: WebSocket) -> None:
    room = websocket.path_params["room"]
    await websocket.accept(subprotocol="chat" if "chat" in websocket.scope["subprotocols"] else None)
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"{room}: {text}")
    except WebSocketDisconnect:
        pass


app = Starlette(routes=[WebSocketRoute("/rooms/{room}", echo)])
