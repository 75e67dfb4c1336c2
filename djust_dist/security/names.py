"""The event name guard: the first check every client event passes."""

from __future__ import annotations

import re
from typing import TypeGuard

MAX_EVENT_NAME_LENGTH = 64

# Lower-case ASCII only, starting with a letter, so dunders, private names and
# anything that could reach a dotted path or a special method never pass.
_EVENT_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


def is_valid_event_name(name: object) -> TypeGuard[str]:
    """Tell whether ``name`` may be looked up as an event handler.

    A valid name is a ``str`` of at most 64 characters that fully matches
    ``^[a-z][a-z0-9_]*$``. A trailing newline fails, unlike with ``re.match`` and ``$``.
    """
    if not isinstance(name, str) or len(name) > MAX_EVENT_NAME_LENGTH:
        return False
    return _EVENT_NAME_PATTERN.fullmatch(name) is not None
