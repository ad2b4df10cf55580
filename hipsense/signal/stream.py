"""The one stateful pattern of ``hipsense.signal``: a pure step function over chunks.

Every stateful algorithm is written once as a pure step function over a chunk of samples:

    state = init(settings)
    state, out = step(settings, state, t_s, *channels)   # any chunk length, including 0 and 1
    out = flush(settings, state)                          # end of stream (look-ahead kernels)

The batch form of a kernel is *defined* as init, one step over everything, flush — so the
live service and ``hipsense eval`` cannot drift apart (tests/signal/test_streaming_equals_batch.py).
Callers hold ``(settings, state)`` themselves; a step never mutates the state it was given
and starts from :func:`shallow_copy` of it.
"""

from __future__ import annotations

from typing import TypeVar

St = TypeVar("St")


def shallow_copy(state: St) -> St:
    """A step's private copy of its input state (steps never mutate the caller's state).
    ``copy.copy`` goes through ``__reduce_ex__``; this is 2.5× faster, and a step runs once
    per BLE chunk, so it shows on a Pi."""
    new = object.__new__(type(state))
    new.__dict__.update(state.__dict__)
    return new
