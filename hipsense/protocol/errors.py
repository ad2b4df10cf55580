"""The one error the protocol raises: :class:`ProtocolError`.

It subclasses :class:`hipsense.errors.HipsenseError` (a leaf module with no imports of its own,
so the dashboard still depends on nothing but the protocol) and :class:`ValueError`, because a
bad message is bad input.
"""

from __future__ import annotations

from hipsense.errors import HipsenseError


class ProtocolError(HipsenseError, ValueError):
    """A topic or payload does not follow hipsense MQTT protocol v1.

    Attributes
    ----------
    reason : str
        What is wrong, in words a person reading a log understands.
    topic : str or None
        The topic the message arrived on, when known.
    path : str or None
        Where in the JSON document the problem is, as a JSON Pointer (``/exercises/0/reps``),
        when the problem is inside the payload.
    """

    def __init__(self, reason: str, *, topic: str | None = None, path: str | None = None) -> None:
        self.reason = reason
        self.topic = topic
        self.path = path
        where = []
        if topic is not None:
            where.append(f"topic {topic!r}")
        if path is not None:
            where.append(f"at {path or '/'}")
        super().__init__(f"{reason} ({', '.join(where)})" if where else reason)
