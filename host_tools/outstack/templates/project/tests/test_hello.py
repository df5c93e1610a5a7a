"""Runs on the host with pytest: each test boots this project's firmware on a virtual board
(the real MicroPython interpreter) and talks to its servers."""

from outstack.testing import board  # noqa: F401  (the fixture)


def test_hello_greets_and_counts(board):  # noqa: F811
    assert board.call("hello", "greet", "Ada") == "hello, Ada"
    assert board.call("hello", "greet", "Grace") == "hello, Grace"
    assert board.call("hello", "count") == 2
