"""sansws.Router: patterns, converters, matching and the 404 answer, sans I/O
(tests/drivers/test_driver_routing_and_hooks.py runs it in every driver)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansws import Router
from sansws.routing import Match


def chat(ws: Any) -> str:
    return "chat"


def item(ws: Any) -> str:
    return "item"


def other(ws: Any) -> str:
    return "other"


def params(router: Router, target: str) -> dict[str, Any] | None:
    found = router.match(target)
    return None if found is None else found.params


def test_each_converter_matches_its_text_and_converts_it() -> None:
    router = Router(
        {
            "/s/{name}": chat,
            "/i/{n:int}": chat,
            "/f/{x:float}": chat,
            "/u/{id:uuid}": chat,
            "/p/{rest:path}": chat,
        }
    )
    assert params(router, "/s/lobby") == {"name": "lobby"}
    assert params(router, "/i/0042") == {"n": 42}
    assert params(router, "/f/1.5") == {"x": 1.5}
    assert params(router, "/f/2") == {"x": 2.0}
    some = uuid.uuid4()
    assert params(router, f"/u/{some}") == {"id": some}
    assert params(router, "/p/a/b/c.txt") == {"rest": "a/b/c.txt"}
    assert params(router, "/p/") == {"rest": ""}
    for target in ("/s/", "/s/a/b", "/i/-1", "/i/1.0", "/f/1.", "/u/not-a-uuid", "/p"):
        assert router.match(target) is None, target


def test_the_first_pattern_that_matches_wins_and_the_query_is_left_out() -> None:
    router = Router({"/items/{id:int}": item, "/items/{name}": chat, "/{any:path}": other})
    found = router.match("/items/7?full=1")
    assert found == Match("/items/{id:int}", item, {"id": 7})
    assert router.match("/items/seven") == Match("/items/{name}", chat, {"name": "seven"})
    assert router.match("/elsewhere/x") == Match("/{any:path}", other, {"any": "elsewhere/x"})
    assert router.patterns == ["/items/{id:int}", "/items/{name}", "/{any:path}"]


def test_matching_is_exact_about_trailing_slashes() -> None:
    router = Router({"/chat": chat})
    assert router.match("/chat") is not None
    assert router.match("/chat/") is None
    assert router.match("/chat?x") is not None


def test_parameters_are_percent_decoded_after_matching() -> None:
    router = Router({"/rooms/{room}/{n:int}": chat})
    assert params(router, "/rooms/a%2Fb/1") == {"room": "a/b", "n": 1}
    assert params(router, "/rooms/caf%C3%A9/2") == {"room": "café", "n": 2}
    # Not UTF-8: no text, so no match (404), rather than replacement characters.
    assert router.match("/rooms/%ff/3") is None


def test_literal_text_outside_ascii_matches_its_percent_encoding() -> None:
    router = Router({"/café/{x}": chat, "/a b": item})
    assert params(router, "/caf%C3%A9/1") == {"x": "1"}
    assert router.match("/a%20b") is not None
    # Regular-expression characters in a pattern are literal.
    assert Router({"/a.b": chat}).match("/axb") is None


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("rooms", "starts with '/'"),
        ("/{id:integer}", "unknown converter 'integer'"),
        ("/{id}/{id}", "appears twice"),
        ("/{1st}", "is not a parameter name"),
        ("/{}", "is not a parameter name"),
        ("/{open", "unbalanced brace"),
        ("/close}", "unbalanced brace"),
    ],
)
def test_a_malformed_pattern_is_refused_when_the_router_is_built(
    pattern: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Router({pattern: chat})


def test_a_handler_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="not callable"):
        Router({"/x": "chat"})  # type: ignore[dict-item]


def test_not_found_is_a_404_naming_the_path_without_the_query() -> None:
    response = Router({"/x": chat}).not_found("/missing?token=secret")
    assert response.status == 404
    assert response.body == b"No WebSocket endpoint at /missing.\n"


class FakeConnection:
    def __init__(self, route: str | None) -> None:
        self.route = route


def test_calling_the_router_runs_the_handler_of_the_connections_route() -> None:
    router = Router({"/chat": chat, "/items/{id:int}": item})
    assert router(FakeConnection("/items/{id:int}")) == "item"
    assert router(FakeConnection("/chat")) == "chat"
    with pytest.raises(LookupError):
        router(FakeConnection(None))


@given(st.lists(st.sampled_from(["a", "b", "%2F", "%20", "1", "/", "?", "%ff"]), max_size=8))
def test_a_path_parameter_is_the_decoded_text_before_the_query(parts: list[str]) -> None:
    router = Router({"/r/{segment}": chat, "/p/{rest:path}": item})
    text = "".join(parts)
    path = text.partition("?")[0]
    for target, name in ((f"/r/{text}", "segment"), (f"/p/{text}", "rest")):
        found = router.match(target)
        try:
            expected: str | None = unquote(path, errors="strict")
        except UnicodeDecodeError:
            expected = None  # "%ff" is no text: no match
        if name == "segment" and ("/" in path or not path):
            expected = None  # one segment, not empty
        if expected is None:
            assert found is None, target
        else:
            assert found is not None, target
            assert found.params == {name: expected}


def test_a_router_shows_its_patterns() -> None:
    assert repr(Router({"/a": chat, "/b/{x}": item})) == "Router(['/a', '/b/{x}'])"


def test_werkzeug_style_parameters_are_refused_with_the_syntax_to_use() -> None:
    with pytest.raises(ValueError, match=r"written \{name\}, not <name>"):
        Router({"/rooms/<name>": chat})
