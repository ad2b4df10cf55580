"""The compiled angle filter (``hipsense/signal/_anglefilter.c``) against the pure-Python one
(``angles._thigh_filter``, itself pinned to the readable reference by
test_angle_filter_reference.py): bit for bit — every output value and every state field, signed
zeros included; NaN where NaN (a NaN's payload is not compared: C compilers may order a
commutative operation's operands either way) — on real recordings, on hostile input, and on any
chunking; and where Python raises, the compiled path raises the same error.

And it must have been built: an install with a C compiler and Python's headers (CI, a
developer's machine) that silently lost the extension fails here. Only where a pure-Python
install is expected (``HIPSENSE_PURE_PYTHON=1``) is that test skipped.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from hipsense.evaluation.uci import read_uci_file
from hipsense.service.live_angle import PURE_PYTHON_ENV, CalibratedAngle, compiled_filter_wanted
from hipsense.signal import angles as A
from hipsense.signal.calibration import Calibration

UCI = Path(__file__).resolve().parents[1] / "data" / "uci-pt"
RECORDINGS = sorted(UCI.glob("s*/e*/u3/*.txt.gz"))
AXIS_MOUNTING = ((0.0, 0.0, 1.0), (-1.0, 0.0, 0.0), (0.0, -1.0, 0.0))  # zeros: 0 × inf = NaN in the products
SKEW_MOUNTING = tuple(map(tuple, Rotation.from_euler("zyx", [23.0, -61.0, 137.0], degrees=True).as_matrix()))

needs_compiled = pytest.mark.skipif(not A.COMPILED_FILTER_AVAILABLE, reason="compiled angle filter not built")


def test_the_compiled_filter_was_built():
    if os.environ.get(PURE_PYTHON_ENV) == "1":
        pytest.skip(f"{PURE_PYTHON_ENV}=1: a pure-Python install is expected")
    assert A.COMPILED_FILTER_AVAILABLE, (
        "hipsense.signal._anglefilter did not build (setup.py marks it optional, so pip only warned): "
        "install gcc and the Python headers, or set HIPSENSE_PURE_PYTHON=1 where pure Python is meant")


@needs_compiled
def test_the_service_takes_the_compiled_filter_unless_told_not_to(monkeypatch, caplog):
    calibration = Calibration(mounting=AXIS_MOUNTING)
    monkeypatch.delenv(PURE_PYTHON_ENV, raising=False)
    caplog.set_level("INFO", logger="hipsense.service.live_angle")
    assert compiled_filter_wanted() and CalibratedAngle(calibration).compiled
    monkeypatch.setenv(PURE_PYTHON_ENV, "1")
    assert not compiled_filter_wanted() and not CalibratedAngle(calibration).compiled
    monkeypatch.setenv(PURE_PYTHON_ENV, "0")
    assert CalibratedAngle(calibration).compiled
    # the service's log says which one runs (on a Pi: was it built?)
    assert [r.fields["filter"] for r in caplog.records] == ["compiled", "python", "compiled"]


def test_asking_for_the_compiled_filter_where_it_is_not_built_says_so(monkeypatch):
    monkeypatch.setattr(A, "_anglefilter", None)
    monkeypatch.setattr(A, "COMPILED_FILTER_AVAILABLE", False)
    settings_ = A.ThighAngleSettings(Calibration(mounting=AXIS_MOUNTING))
    with pytest.raises(RuntimeError, match="not built"):
        A.thigh_angles_step(settings_, A.thigh_angles_init(settings_), [0.0], [[0.0, -9.8, 0.0]], compiled=True)
    with pytest.raises(RuntimeError, match="not built"):
        CalibratedAngle(Calibration(mounting=AXIS_MOUNTING), compiled=True)
    assert not CalibratedAngle(Calibration(mounting=AXIS_MOUNTING)).compiled  # falls back to Python


# -- bit-for-bit comparison -----------------------------------------------------------------------


def _bits(x: float) -> object:
    """A float as its bits, every NaN alike (payloads are not compared)."""
    return "nan" if math.isnan(x) else struct.pack("<d", x)


def _flat(value: object) -> list:
    if value is None or isinstance(value, (bool, str)):
        return [value]
    if isinstance(value, (tuple, list)):
        return [item for v in value for item in _flat(v)]
    return [type(value).__name__, _bits(value)]


def _state_bits(state: A.ThighAngleState) -> list:
    o = state.orientation
    return _flat([o.up_ref, o.q, o.t, o.w_prev, o.still_s, o.since_rezero_s, o.one_g, state.bias])


def _same_array(a: np.ndarray, b: np.ndarray, what: str) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, what
    if a.dtype == bool:
        assert np.array_equal(a, b), what
        return
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    assert np.array_equal(nan_a, nan_b), f"{what}: NaN at different samples"
    differ = np.flatnonzero(a.view(np.int64)[~nan_a] != b.view(np.int64)[~nan_b])
    assert not len(differ), f"{what}: {len(differ)} values differ, first {a[~nan_a][differ[0]]!r} != {b[~nan_b][differ[0]]!r}"


FIELDS = ("t_s", "flexion_deg", "abduction_deg", "rotation_deg", "rotation_observable", "speed_dps", "up_thigh")


def _run(settings_, t, acc, gyr, cuts, compiled):
    """The chunks [cuts[i], cuts[i+1]); per chunk the outputs or the exception (type and text)."""
    state = A.thigh_angles_init(settings_)
    results = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        try:
            state, out = A.thigh_angles_step(settings_, state, t[a:b], acc[a:b], None if gyr is None else gyr[a:b],
                                             compiled=compiled)
        except (ArithmeticError, ValueError) as exc:
            results.append((type(exc), str(exc)))
            continue  # the state stays as it was, as a caller's would
        results.append((out, _state_bits(state)))
    return results


def _assert_same_runs(settings_, t, acc, gyr, cuts):
    python = _run(settings_, t, acc, gyr, cuts, False)
    compiled = _run(settings_, t, acc, gyr, cuts, True)
    for i, (p, c) in enumerate(zip(python, compiled, strict=True)):
        if isinstance(p[0], type):
            assert c == p, f"chunk {i}: Python raised {p}, compiled gave {c}"
            continue
        assert not isinstance(c[0], type), f"chunk {i}: compiled raised {c}, Python did not"
        for name in FIELDS:
            _same_array(getattr(p[0], name), getattr(c[0], name), f"chunk {i} {name}")
        assert p[1] == c[1], f"chunk {i}: state differs"
    return python


def _live_readings(calibration, t, acc, gyr, size, compiled):
    live = CalibratedAngle(calibration, compiled=compiled)
    out = []
    for a in range(0, len(t), size):
        try:
            r = live.push(t[a:a + size], acc[a:a + size], None if gyr is None else gyr[a:a + size])
        except (ArithmeticError, ValueError) as exc:
            out.append((type(exc), str(exc)))
            continue
        out.append(None if r is None else _flat((r.t_s, r.thigh_angle_deg, r.abduction_deg)))
    return out, _state_bits(live._state)


# -- real recordings --------------------------------------------------------------------------------


def _recording(path: Path, hz: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, acc, gyr = read_uci_file(path)
    if hz == 25.0:
        return t, acc, gyr
    t_new = np.arange(0, t[-1], 1.0 / hz)
    return (t_new, np.column_stack([np.interp(t_new, t, acc[:, i]) for i in range(3)]),
            np.column_stack([np.interp(t_new, t, gyr[:, i]) for i in range(3)]))


def test_the_recordings_are_here_and_long():
    assert len(RECORDINGS) >= 4
    assert sum(read_uci_file(p)[0][-1] for p in RECORDINGS) > 10 * 60  # over ten minutes in all


@needs_compiled
@pytest.mark.parametrize("with_gyro", [True, False])
@pytest.mark.parametrize("mounting", [AXIS_MOUNTING, SKEW_MOUNTING], ids=["axis-mounting", "skew-mounting"])
def test_real_recordings_bit_for_bit(mounting, with_gyro):
    """Every UCI thigh recording of tests/data (about 16 min at 25 Hz), and one at 100 Hz (as
    the service runs), in the service's 12-sample batches and in random chunks from 0 samples to
    several thousand; a calibration with a bias and its own 1 g so bias tracking and heading
    re-zeroing both run."""
    rng = np.random.default_rng(3)
    tracked = 0
    for path in RECORDINGS:
        for hz in (25.0, 100.0) if path == RECORDINGS[0] else (25.0,):
            t, acc, gyr = _recording(path, hz)
            # its own 1 g, as `hipsense calibrate` measures it (s2's sensor reads 1.05 g)
            calibration = Calibration(mounting=mounting, side="left", gyro_bias_rad_s=(0.004, -0.011, 0.002),
                                      acc_one_g_ms2=float(np.median(np.linalg.norm(acc, axis=1))))
            settings_ = A.ThighAngleSettings(calibration)
            gyr = gyr if with_gyro else None
            n = len(t)
            service_cuts = np.r_[np.arange(0, n, 12), n]
            random_cuts = np.unique(np.r_[0, rng.integers(0, n, size=n // 300), n])
            random_cuts = np.sort(np.r_[random_cuts, random_cuts[1:4]])  # a few empty chunks
            for cuts in (service_cuts, random_cuts):
                runs = _assert_same_runs(settings_, t, acc, gyr, cuts)
                assert not any(isinstance(r[0], type) for r in runs)
            tracked += runs[-1][1][-6:] != _flat(calibration.gyro_bias_rad_s)
            p_live = _live_readings(calibration, t, acc, gyr, 12, False)
            c_live = _live_readings(calibration, t, acc, gyr, 12, True)
            assert p_live == c_live
            assert sum(r is not None for r in p_live[0]) > 0.9 * len(p_live[0])
    if with_gyro:  # bias tracking ran (s2's gyro is too noisy for 3 °/s "still": never there)
        assert tracked >= 3


# -- hostile input -------------------------------------------------------------------------------


def _hostile(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.choice([0.01, 0.01, 0.02, 0.5, 0.0, -0.01], size=n, p=[.8, .15, .02, .01, .01, .01]))
    acc = np.tile([0.3, -9.7, 0.4], (n, 1)) + rng.normal(0, 0.02, (n, 3))
    gyr = rng.normal(0.01, 0.003, (n, 3))
    moving = (np.arange(n) // 150) % 3 == 2
    acc[moving] += rng.normal(0, 4, (moving.sum(), 3))
    gyr[moving] += rng.normal(0, 2, (moving.sum(), 3))
    return t, acc, gyr


SPECIAL = [
    ("acc zero", "acc", slice(100, 110), 0.0),
    ("acc -0.0", "acc", slice(120, 121), -0.0),
    ("acc NaN", "acc", slice(200, 201), np.nan),
    ("acc +inf", "acc", slice(220, 221), np.inf),
    ("acc -inf one axis", "acc", (slice(230, 231), 1), -np.inf),
    ("acc huge", "acc", slice(250, 252), 1e6),
    ("acc tiny", "acc", slice(260, 262), 1e-170),  # ** 2 underflows to 0
    ("acc subnormal", "acc", slice(264, 266), 5e-324),
    ("gyr +inf", "gyr", slice(300, 301), np.inf),
    ("gyr NaN", "gyr", slice(320, 321), np.nan),
    ("gyr huge", "gyr", slice(340, 341), 1e150),
    ("gyr zero", "gyr", slice(360, 420), 0.0),
    ("gyr far above the bias cap", "gyr", slice(600, 620), 0.5),
    ("t NaN", "t", slice(500, 501), np.nan),
    ("t inf", "t", slice(520, 521), np.inf),
    ("t repeated", "t", slice(540, 541), None),
    ("acc overflows ** 2", "acc", slice(700, 701), 1e300),  # Python: OverflowError
    ("gyr overflows ** 2", "gyr", slice(720, 721), -1e300),
]


@needs_compiled
@pytest.mark.parametrize("with_gyro", [True, False])
@pytest.mark.parametrize("mounting", [AXIS_MOUNTING, SKEW_MOUNTING], ids=["axis-mounting", "skew-mounting"])
@pytest.mark.parametrize("case", SPECIAL, ids=[c[0] for c in SPECIAL])
def test_hostile_input_bit_for_bit_or_the_same_error(case, mounting, with_gyro):
    _, channel, where, value = case
    t, acc, gyr = _hostile(900, seed=11)
    if channel == "t":
        if value is None:
            t[where] = t[where.start - 1]
        else:
            t[where] = value
    else:
        (acc if channel == "acc" else gyr)[where] = value
    gyr = gyr if with_gyro else None
    settings_ = A.ThighAngleSettings(Calibration(mounting=mounting, side="right", gyro_bias_rad_s=(0.01, 0.0, -0.01)))
    n = len(t)
    rng = np.random.default_rng(5)
    for cuts in (np.r_[np.arange(0, n, 12), n],  # the service's batches
                 np.arange(n + 1),  # one sample a chunk
                 np.array([0, n]),  # all in one chunk
                 np.unique(np.r_[0, rng.integers(0, n, size=40), n])):
        _assert_same_runs(settings_, t, acc, gyr, cuts)
    assert _live_readings(settings_.calibration, t, acc, gyr, 4, False) == \
        _live_readings(settings_.calibration, t, acc, gyr, 4, True)


@needs_compiled
def test_errors_are_pythons():
    """Where Python raises, the compiled path raises the same (it runs the chunk again in
    Python): an overflowing ``** 2``, and the sine of an infinite rotation."""
    settings_ = A.ThighAngleSettings(Calibration(mounting=SKEW_MOUNTING))
    t = np.array([0.0, 0.01, 0.02])
    acc = np.array([[0.0, -9.8, 0.0], [0.0, -9.8, 0.0], [1e300, -9.8, 0.0]])
    for compiled in (False, True):
        with pytest.raises(OverflowError):
            A.thigh_angles_step(settings_, A.thigh_angles_init(settings_), t, acc, np.zeros((3, 3)), compiled=compiled)
        with pytest.raises(OverflowError):
            CalibratedAngle(settings_.calibration, compiled=compiled).push(t, acc, np.zeros((3, 3)))
    gyr = np.array([[0.0, 0.0, 0.0], [np.inf, 0.0, 0.0], [0.0, 0.0, 0.0]])  # skew mounting: inf, no NaN
    acc[2, 0] = 0.0
    errors = []
    for compiled in (False, True):
        with pytest.raises(ValueError, match="math domain error") as info:
            A.thigh_angles_step(settings_, A.thigh_angles_init(settings_), t, acc, gyr, compiled=compiled)
        errors.append(str(info.value))
    assert errors[0] == errors[1]


@needs_compiled
@pytest.mark.parametrize("with_gyro", [True, False])
def test_single_samples_and_empty_chunks(with_gyro):
    settings_ = A.ThighAngleSettings(Calibration(mounting=SKEW_MOUNTING, gyro_bias_rad_s=(0.1, 0.2, 0.3)))
    t, acc, gyr = _hostile(5, seed=2)
    gyr = gyr if with_gyro else None
    for cuts in (np.array([0, 1]), np.array([0, 0, 1, 1, 2, 2, 5]), np.array([0, 0])):
        _assert_same_runs(settings_, t, acc, gyr, cuts)
    # an empty chunk hands back the state's own objects (an int stays an int, as in Python)
    state = A.thigh_angles_init(settings_)
    state.orientation.still_s = 0
    for compiled in (False, True):
        new, out = A.thigh_angles_step(settings_, state, t[:0], acc[:0], None if gyr is None else gyr[:0],
                                       compiled=compiled)
        assert len(out.t_s) == 0 and type(new.orientation.still_s) is int and new.orientation.t is None
        assert new.orientation is not state.orientation  # a step never mutates its input


@needs_compiled
def test_bad_buffers_are_refused():
    from hipsense.signal import _anglefilter

    s = A.ThighAngleSettings(Calibration(mounting=SKEW_MOUNTING))
    o = A.thigh_angles_init(s).orientation
    args = [s._compiled_constants, o.up_ref, o.one_g, o.q, o.t, o.w_prev, o.still_s, o.since_rezero_s, (0.0,) * 3]
    t, acc, q = np.zeros(4), np.zeros((4, 3)), np.zeros((4, 4))
    with pytest.raises(ValueError, match="acc holds"):
        _anglefilter.filter(*args, t, np.zeros((3, 3)), None, q, None, None)
    with pytest.raises(ValueError, match="q_out holds"):
        _anglefilter.filter(*args, t, acc, None, np.zeros((4, 3)), None, None)
    with pytest.raises(TypeError, match="float64"):
        _anglefilter.filter(*args, t.astype(np.float32), acc, None, q, None, None)
    with pytest.raises(ValueError, match="read-only"):
        q.flags.writeable = False
        _anglefilter.filter(*args, t, acc, None, q, None, None)
    with pytest.raises(TypeError, match="15 arguments"):
        _anglefilter.filter(*args)


@needs_compiled
def test_arrays_the_wrong_way_round_are_refused_as_python_refuses_them():
    # (a reviewer's find: the compiled filter checks lengths only, so acc.T of 12 samples — 36
    # values — was read as 12 rows and gave 136 deg of flexion where the truth is 111)
    s = A.ThighAngleSettings(Calibration(mounting=SKEW_MOUNTING))
    t = np.arange(12) * 0.01
    acc = np.tile([0.0, 0.0, 9.81], (12, 1))
    with pytest.raises(ValueError, match="acc_ms2 must be"):
        A.thigh_angles_latest_arrays(s, A.thigh_angles_init(s), t, acc.T)
    with pytest.raises(ValueError, match="gyr_rad_s must be"):
        A.thigh_angles_latest_arrays(s, A.thigh_angles_init(s), t, acc, np.zeros((3, 12)))


def test_a_stale_build_is_not_used():
    # an editable install keeps the build of an older source after a pull; one whose calling
    # convention (ABI) differs is set aside, with a warning, for the Python filter (a reviewer's
    # find: a changed argument list raised on every push instead). In a subprocess: the check
    # runs at import
    import subprocess
    import sys

    code = (
        "import sys, types, warnings; warnings.simplefilter('error')\n"
        "sys.modules['hipsense.signal._anglefilter'] = types.ModuleType('hipsense.signal._anglefilter')\n"
        "try:\n"
        "    import hipsense.signal.angles\n"
        "except RuntimeWarning as w:\n"
        "    print('warned:', w)\n"
        "warnings.simplefilter('ignore')\n"
        "import hipsense.signal.angles as A\n"
        "print('available', A.COMPILED_FILTER_AVAILABLE)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "warned: hipsense.signal._anglefilter is a stale build" in done.stdout, done.stdout + done.stderr
    assert "available False" in done.stdout


special_floats = st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300, 5e-324, 1e155, 1e300, -9.80665])


@needs_compiled
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(min_value=1, max_value=80), with_gyro=st.booleans())
def test_any_input_bit_for_bit_or_the_same_error(data, n, with_gyro):
    """Arbitrary readings (any of them a special value), times that stall, jump and go back,
    any chunking."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    t = np.cumsum(rng.choice([0.01, 0.0, -0.02, 0.4, 0.01], size=n))
    acc = rng.normal(0, 6, (n, 3)) + [0.0, -9.8, 0.0]
    gyr = rng.normal(0, 1.5, (n, 3))
    for array in (t, acc, gyr):
        flat = array.reshape(-1)
        for i in data.draw(st.lists(st.integers(0, len(flat) - 1), max_size=4)):
            flat[i] = data.draw(special_floats)
    cuts = np.sort(np.r_[0, data.draw(st.lists(st.integers(0, n), max_size=6)), n]).astype(int)
    mounting = data.draw(st.sampled_from([AXIS_MOUNTING, SKEW_MOUNTING]))
    settings_ = A.ThighAngleSettings(Calibration(mounting=mounting, gyro_bias_rad_s=(0.02, -0.01, 0.0)))
    _assert_same_runs(settings_, t, acc, gyr if with_gyro else None, cuts)
