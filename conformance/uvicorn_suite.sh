#!/bin/sh
# Run uvicorn's own WebSocket tests against sansws.drivers.uvicorn.
#
#   sh conformance/uvicorn_suite.sh [PYTEST ARGS...]
#
# Downloads the sdist of a pinned uvicorn from PyPI, adds
# "sansws.drivers.uvicorn:WebSocketProtocol" to the ws_protocol_cls fixture
# of its tests/conftest.py, and runs tests/protocols/test_websocket.py for
# that implementation only, in a virtual environment of its own (sansws
# installed from this checkout, uvicorn and its test dependencies from PyPI).
# Exit status: pytest's. Two tests assert that the protocol is one of
# uvicorn's own classes and are deselected (see docs/embedding.md).
set -eu
UVICORN_VERSION="${UVICORN_VERSION:-0.54.0}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${UVICORN_SUITE_DIR:-${TMPDIR:-/tmp}/sansws-uvicorn-suite-$UVICORN_VERSION}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$WORK"
if [ ! -x "$WORK/venv/bin/python" ]; then
    "$PYTHON" -m venv "$WORK/venv"
fi
PY="$WORK/venv/bin/python"
"$PY" -m pip install -q --disable-pip-version-check \
    "uvicorn[standard]==$UVICORN_VERSION" pytest pytest-mock trustme cryptography \
    httpx2 a2wsgi wsproto anyio websockets zttp
"$PY" -m pip install -q --disable-pip-version-check "$HERE"
if [ ! -f "$WORK/uvicorn-$UVICORN_VERSION/tests/conftest.py" ]; then
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
        "uvicorn==$UVICORN_VERSION" -d "$WORK"
    tar -xzf "$WORK/uvicorn-$UVICORN_VERSION.tar.gz" -C "$WORK"
fi
cd "$WORK/uvicorn-$UVICORN_VERSION"
"$PY" - <<'PATCH'
import pathlib, re
path = pathlib.Path("tests/conftest.py")
text = path.read_text()
ours = '        pytest.param("sansws.drivers.uvicorn:WebSocketProtocol", id="sansws"),\n'
if ours not in text:
    # The first entry of the ws_protocol_cls fixture's params.
    anchor = '            "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol", id="websockets-sansio"\n        ),\n'
    if anchor not in text:
        raise SystemExit("tests/conftest.py: the ws_protocol_cls fixture has changed; update this script")
    path.write_text(text.replace(anchor, anchor + ours, 1))
PATCH
# uvicorn's own addopts start 8 xdist workers; one process is enough here.
exec "$PY" -m pytest -o addopts="" -p no:cacheprovider -rfEs -q \
    tests/protocols/test_websocket.py -k "sansws and not test_server_keepalive_ping_pong and not test_server_keepalive_disabled" "$@"
