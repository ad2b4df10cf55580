"""Cycles with direction: the thigh going round (hip circles).

During hip circles the gravity direction seen by the sensor goes round a *centre*: the mean
pose of the raised leg (not the rest pose — the leg is lifted to circle). The kernel tracks
that centre with a slow average (``centre_tau_s``), measures the angle ``phi`` of the current
gravity direction around it, and accumulates the unwrapped turn. Each full turn (±360°) with a
radius of at least ``min_radius_deg`` is one cycle, signed by its direction: ``+1`` is
counter-clockwise about the centre axis as seen from the sensor (the "up" direction the
accelerometer reads), ``-1`` clockwise. A change of direction restarts the count of the turn.

Phase is measured in a basis of the plane perpendicular to the centre; the basis is rebuilt
from the centre every sample, and both the previous and the current direction are measured
in the same basis, so the slow drift of the centre never shows up as a turn.
Latency: a cycle is emitted the sample its turn completes. Work and memory: O(1) per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .stream import shallow_copy


@dataclass(frozen=True)
class CycleSettings:
    centre_tau_s: float = 1.5
    min_radius_deg: float = 2.0
    max_cycle_s: float = 10.0  # a slower "turn" is drift, not a circle
    reverse_deg: float = 45.0  # turning back this far means the direction changed
    # A turn interrupted (direction change, leg lowered) after this share of a circle still
    # counts: the first circle of a set is partly spent while the centre settles.
    complete_fraction: float = 0.6

    def __post_init__(self) -> None:
        if self.centre_tau_s <= 0 or self.min_radius_deg <= 0 or self.max_cycle_s <= 0:
            raise ValueError("cycle settings must be > 0")


@dataclass(frozen=True)
class CycleEvent:
    start_t_s: float
    end_t_s: float
    direction: int  # +1 counter-clockwise, -1 clockwise (about the centre axis, sensor view)
    radius_deg: float  # mean angular radius of the circle

    @property
    def duration_s(self) -> float:
        return self.end_t_s - self.start_t_s


@dataclass
class CycleState:
    t: float | None = None
    centre: tuple[float, float, float] | None = None
    prev_g: tuple[float, float, float] | None = None
    turn_deg: float = 0.0  # accumulated signed turn since the last cycle
    turn_start: float = 0.0
    radius_sum: float = 0.0
    radius_n: int = 0
    back_deg: float = 0.0  # turn against the current direction, not yet a reversal


@dataclass
class CycleOutput:
    cycles: list[CycleEvent] = field(default_factory=list)


def count_cycles_init(settings: CycleSettings) -> CycleState:
    return CycleState()


def _basis(c: tuple[float, float, float]) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    cx, cy, cz = c
    # reference: the sensor axis least aligned with the centre, for a well-conditioned cross
    ax = (abs(cx), abs(cy), abs(cz))
    ref = (1.0, 0.0, 0.0) if ax[0] <= ax[1] and ax[0] <= ax[2] else ((0.0, 1.0, 0.0) if ax[1] <= ax[2] else (0.0, 0.0, 1.0))
    rx, ry, rz = ref
    ux, uy, uz = cy * rz - cz * ry, cz * rx - cx * rz, cx * ry - cy * rx
    n = math.sqrt(ux * ux + uy * uy + uz * uz)
    ux, uy, uz = ux / n, uy / n, uz / n
    vx, vy, vz = cy * uz - cz * uy, cz * ux - cx * uz, cx * uy - cy * ux
    return (ux, uy, uz), (vx, vy, vz)


def count_cycles_step(
    settings: CycleSettings, state: CycleState, t_s: np.ndarray, g: np.ndarray
) -> tuple[CycleState, CycleOutput]:
    """One chunk: ``t_s`` (m,), gravity unit vectors ``g`` (m, 3)."""
    st = shallow_copy(state)
    s = settings
    out = CycleOutput()
    m = len(t_s)
    ts = np.asarray(t_s, dtype=float).tolist()
    gs = np.asarray(g, dtype=float).reshape(m, 3).tolist()
    deg = 180.0 / math.pi
    for i in range(m):
        t = ts[i]
        gx, gy, gz = gs[i]
        if st.centre is None or st.t is None or t - st.t > 1.0 or t <= st.t:
            st.centre, st.prev_g, st.t = (gx, gy, gz), (gx, gy, gz), t
            st.turn_deg, st.turn_start, st.radius_sum, st.radius_n = 0.0, t, 0.0, 0
            continue
        dt = t - st.t
        st.t = t
        k = dt / s.centre_tau_s
        cx, cy, cz = st.centre
        cx, cy, cz = cx + k * (gx - cx), cy + k * (gy - cy), cz + k * (gz - cz)
        n = math.sqrt(cx * cx + cy * cy + cz * cz)
        cx, cy, cz = cx / n, cy / n, cz / n
        st.centre = (cx, cy, cz)
        (ux, uy, uz), (vx, vy, vz) = _basis(st.centre)
        px, py, pz = st.prev_g
        phi_prev = math.atan2(px * vx + py * vy + pz * vz, px * ux + py * uy + pz * uz)
        phi = math.atan2(gx * vx + gy * vy + gz * vz, gx * ux + gy * uy + gz * uz)
        dphi = phi - phi_prev
        if dphi > math.pi:
            dphi -= 2 * math.pi
        elif dphi < -math.pi:
            dphi += 2 * math.pi
        st.prev_g = (gx, gy, gz)
        dot = gx * cx + gy * cy + gz * cz
        radius = math.acos(1.0 if dot > 1.0 else (-1.0 if dot < -1.0 else dot)) * deg
        d = dphi * deg
        reversing = st.turn_deg != 0.0 and (d > 0) != (st.turn_deg > 0)
        st.back_deg = st.back_deg + abs(d) if reversing else 0.0
        if radius < s.min_radius_deg or st.back_deg > s.reverse_deg or t - st.turn_start > s.max_cycle_s:
            # too close to the centre to tell a direction, turning the other way, or too
            # slow: close the turn (counting it if nearly complete) and start again
            _close_turn(s, st, t, out)
            if radius < s.min_radius_deg:
                continue
            d = 0.0
        st.turn_deg += d
        st.radius_sum += radius
        st.radius_n += 1
        if abs(st.turn_deg) >= 360.0:
            direction = 1 if st.turn_deg > 0 else -1
            out.cycles.append(CycleEvent(st.turn_start, t, direction, st.radius_sum / st.radius_n))
            st.turn_deg -= direction * 360.0
            st.turn_start, st.radius_sum, st.radius_n = t, 0.0, 0
    return st, out


def _close_turn(s: CycleSettings, st: CycleState, t: float, out: CycleOutput) -> None:
    if abs(st.turn_deg) >= s.complete_fraction * 360.0 and st.radius_n:
        direction = 1 if st.turn_deg > 0 else -1
        out.cycles.append(CycleEvent(st.turn_start, t, direction, st.radius_sum / st.radius_n))
    st.turn_deg, st.turn_start, st.radius_sum, st.radius_n, st.back_deg = 0.0, t, 0.0, 0, 0.0


def count_cycles_flush(settings: CycleSettings, state: CycleState) -> CycleOutput:
    """End of stream: a nearly complete last turn counts."""
    st = shallow_copy(state)
    out = CycleOutput()
    if st.t is not None:
        _close_turn(settings, st, st.t, out)
    return out


def count_cycles(settings: CycleSettings, t_s: np.ndarray, g: np.ndarray) -> CycleOutput:
    """Batch form: init, one step over everything."""
    st, out = count_cycles_step(settings, count_cycles_init(settings), t_s, g)
    out.cycles += count_cycles_flush(settings, st).cycles
    return out
