"""A simulator whose demo credentials are misspelt (`DEMO_SECRET`), and a `State` class that is not a hook."""

from __future__ import annotations

from typing import Any


class State:
    pass


state = State()
DEMO_SECRET = {"api_key": "sandbox-key"}
urlpatterns: list[Any] = []
