"""A FastAPI endpoint that refuses clients without a token, on uvicorn with
sansws as its WebSocket protocol.

Run it with::

    uvicorn uvicorn_fastapi:app --ws sansws.drivers.uvicorn:WebSocketProtocol
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect, WebSocketException, status

app = FastAPI()


@app.websocket("/items/{item_id}")
async def item(websocket: WebSocket, item_id: int, token: str | None = None) -> None:
    if token != "secret":
        # Refused before the handshake: the client gets an HTTP 403.
        raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION)
    await websocket.accept()
    try:
        async for data in websocket.iter_json():
            await websocket.send_json({"item": item_id, "got": data})
    except WebSocketDisconnect:
        pass
