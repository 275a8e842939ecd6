"""JSON pointers (RFC 6901): a key written into a pointer reads back as the same key."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from klippfisk.spec.pointer import last_key, pointer_join, pointer_token


@given(st.lists(st.text(alphabet="ab/~01", max_size=5), max_size=4), st.text(max_size=8))
def test_the_last_key_of_a_joined_pointer_is_the_key_as_given(parents: list[str], key: str) -> None:
    parent = "".join(f"/{pointer_token(p)}" for p in parents)
    assert last_key(pointer_join(parent, key)) == key


def test_escapes_are_undone_in_the_order_rfc6901_gives() -> None:
    assert pointer_token("a/b~c") == "a~1b~0c"
    assert last_key("/x/a~1b~0c") == "a/b~c"
    assert last_key("/x/~01") == "~1"  # not "/": ~0 is undone last
    assert last_key("/items/3") == "3" and last_key("") == ""
