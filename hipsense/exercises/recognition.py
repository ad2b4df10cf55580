"""Exercise recognition from a thigh accelerometer: posture + motion, few parameters.

The recogniser names the exercise being done in a window of thigh IMU samples, gives a
confidence and says ``"unknown"`` when it cannot tell. It uses the accelerometer only (a gyroscope
is accepted and ignored), so accelerometer-only sensors work.

Thigh frame convention
    The features assume the sensor's x axis lies roughly along the thigh and its z axis is
    the normal of the sensor's face (the sensor sits flat on the thigh). The *sign* of every axis
    is free: a sensor strapped upside down, or on the other leg, gives the same features, because
    only absolute direction cosines are used. A sensor turned *within* the skin plane (x no longer
    along the thigh) is not covered; pass ``mounting`` (a 3×3 rotation, sensor → thigh frame,
    e.g. from ``hipsense calibrate``) to undo it.

Features (all physically meaningful, all computed on a 25 Hz grid obtained by time-binning the
input, so any rate 25–200 Hz and irregular timestamps give the same numbers):

``elevation_deg``
    angle of the thigh axis above the horizontal, ``asin|g_x|`` of the mean gravity direction:
    ~90° on hands and knees, ~40° lying on the back with knees bent, ~0° prone or on the side.
``ap_deg``
    angle of the sensor's y axis (front–back of the thigh) above the horizontal, ``asin|g_y|``:
    ~90° lying prone/supine with the thigh flat.
``roll_deg``
    angle of the face normal above the horizontal, ``asin|g_z|``: ~90° lying on the side.
``tilt_range_deg``
    robust range (2.5–97.5 %) of the tilt along the principal axis of tilt change, in degrees
    (log scale).
``sagittal``
    ``|z|`` component of the rotation axis of that principal tilt change: 1 when the thigh swings
    in its own flexion/extension plane (bridge, superman), 0 when it rolls about its long axis or
    sideways (knee rolling, clams).
``motion_g``
    RMS of the 0.3–5 Hz acceleration (movement, not posture), g (log scale).
``jolt_g``
    RMS of the 3–8 Hz acceleration, g (log scale): short jolts such as punches.
``periodicity``
    height of the first autocorrelation peak (lag 1–12 s) of the principal tilt signal.

Classifier: Gaussian naive Bayes on standardised features (7 classes × 8 features × (mean,
variance) + standardisation), shipped in ``recognition_model.json`` and rebuilt by
:func:`train_recognition_model` from MEx (the command is in :func:`save_model`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hipsense.exercises.lowpass import filtfilt_lowpass, filtfilt_lowpass_bank
from hipsense.exercises.recognition_window import HOP_S, WINDOW_S

__all__ = [
    "FEATURE_NAMES",
    "GRAVITY_MS2",
    "MEX_CITATION",
    "MEX_EXERCISES",
    "RecognitionModel",
    "Recognition",
    "Window",
    "extract_features",
    "load_model",
    "recognise",
    "recognise_from_vectors",
    "recognise_recording",
    "save_model",
    "fit_recognition_model",
    "train_recognition_model",
    "window_vectors",
]

GRAVITY_MS2 = 9.80665
GRID_HZ = 25.0
"""Every window is time-binned to this rate before features are computed."""
MIN_WINDOW_S = 6.0
"""Shorter windows are answered ``"unknown"``: not even one slow rep fits."""
STILL_TILT_DEG = 1.0
STILL_MOTION_G = 0.003
"""A window whose tilt range and movement RMS are both below these is "still"."""
MIN_CONFIDENCE = 0.5

FEATURE_NAMES: tuple[str, ...] = (
    "elevation_deg",
    "ap_deg",
    "roll_deg",
    "tilt_range_deg",
    "sagittal",
    "motion_g",
    "jolt_g",
    "periodicity",
)
_LOG_FEATURES = frozenset({"tilt_range_deg", "motion_g", "jolt_g"})

MEX_CITATION = (
    "A. Wijekoon, N. Wiratunga, K. Cooper, \"MEx: Multi-modal Exercises Dataset for Human "
    "Activity Recognition\", arXiv:1908.08992, 2019. Licence: CC BY 4.0."
)
MEX_EXERCISES: dict[str, str] = {
    "01": "side_to_side",
    "02": "bridge",
    "03": "pelvic_tilt",
    "04": "clam_shells",
    "05": "press_ups",
    "06": "quadruped_punches",
    "07": "quadruped_opposite_arm_leg",
}
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Window:
    """A window of IMU samples: times (s), acceleration (m/s², gravity included), optional gyro."""

    t_s: np.ndarray
    acc_ms2: np.ndarray
    gyr_rad_s: np.ndarray | None = None


@dataclass(frozen=True)
class Recognition:
    """The answer: an exercise id or ``"unknown"``, a confidence in 0..1, per-candidate scores.

    ``scores`` are posterior probabilities over the candidates (they sum to 1 when the window
    could be scored, and are empty when it could not). ``reason`` says why the answer is
    ``"unknown"`` (``"too_short"``, ``"still"``, ``"atypical"``, ``"low_confidence"``).
    """

    exercise_id: str
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)
    reason: str | None = None

    @property
    def known(self) -> bool:
        return self.exercise_id != UNKNOWN


# --------------------------------------------------------------------------------------------
# Features


def _as_window(window: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(window, Mapping):
        t, acc = window["t_s"], window["acc_ms2"]
    elif hasattr(window, "t_s") and hasattr(window, "acc_ms2"):
        t, acc = window.t_s, window.acc_ms2
    else:
        t, acc = window[0], window[1]
    t = np.asarray(t, dtype=float).reshape(-1)
    acc = np.asarray(acc, dtype=float)
    if acc.ndim != 2 or acc.shape[1] != 3 or acc.shape[0] != t.shape[0]:
        raise ValueError(f"acc_ms2 must have shape (n, 3) matching t_s (n,), got {acc.shape}")
    return t, acc


def _to_grid(t_s: np.ndarray, acc_g: np.ndarray, fs: float = GRID_HZ) -> np.ndarray:
    """Time-bin samples onto a uniform grid (bin mean; empty bins interpolated)."""
    ok = np.isfinite(t_s) & np.all(np.isfinite(acc_g), axis=1)
    t_s, acc_g = t_s[ok], acc_g[ok]
    order = np.argsort(t_s, kind="stable")
    t_s, acc_g = t_s[order], acc_g[order]
    t = t_s - t_s[0]
    n = int(math.floor(t[-1] * fs)) + 1
    idx = np.clip(np.floor(t * fs + 0.5).astype(int), 0, n - 1)
    cnt = np.bincount(idx, minlength=n)
    filled = cnt > 0
    tg = np.arange(n, dtype=float)
    out = np.empty((n, 3))
    for k in range(3):
        s = np.bincount(idx, acc_g[:, k], minlength=n)
        out[:, k] = np.interp(tg, tg[filled], s[filled] / cnt[filled])
    return out


def _lowpass(x: np.ndarray, fc: float) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth on the 25 Hz grid (numpy; the service imports no scipy)."""
    return filtfilt_lowpass(x, fc, GRID_HZ)


_CUTOFFS_HZ = (1.0, 5.0, 0.3, 8.0, 3.0)
"""The features' low-passes: gravity direction; movement 0.3-5 Hz; jolts 3-8 Hz."""


def _features_from_grid(a: np.ndarray) -> tuple[dict[str, float], bool]:
    """Features from a (n, 3) uniform 25 Hz window in g. Returns (features, is_still)."""
    grav, lp5, lp03, lp8, lp3 = filtfilt_lowpass_bank(a, _CUTOFFS_HZ, GRID_HZ)  # one FFT for all five
    u = grav / np.maximum(np.linalg.norm(grav, axis=1, keepdims=True), 1e-9)
    mean = u.mean(axis=0)
    m = mean / max(float(np.linalg.norm(mean)), 1e-9)

    d = u - m
    cov = d.T @ d / len(d)
    w, v = np.linalg.eigh(cov)
    e1 = v[:, 2]
    psi = np.degrees(np.arcsin(np.clip(d @ e1, -1.0, 1.0)))
    high, low = np.percentile(psi, (97.5, 2.5))  # one sort for both
    tilt_range = float(high - low)
    m0, m1, m2 = (float(c) for c in m)
    e0, e1_, e2 = (float(c) for c in e1)
    axis = np.array([m1 * e2 - m2 * e1_, m2 * e0 - m0 * e2, m0 * e1_ - m1 * e0])  # np.cross(m, e1), without its overhead
    axis /= max(float(np.linalg.norm(axis)), 1e-12)

    x = psi - psi.mean()
    ac = np.correlate(x, x, mode="full")[len(x) - 1 :]
    ac = ac / ac[0] if ac[0] > 0 else np.zeros_like(ac)
    lo, hi = int(1.0 * GRID_HZ), min(len(ac), int(12.0 * GRID_HZ))
    periodicity = float(np.clip(ac[lo:hi].max(), 0.0, 1.0)) if hi > lo else 0.0

    motion = lp5 - lp03
    motion_rms = float(np.sqrt(np.mean(np.sum(motion**2, axis=1))))
    jolt = lp8 - lp3
    jolt_rms = float(np.sqrt(np.mean(np.sum(jolt**2, axis=1))))

    feats = {
        "elevation_deg": math.degrees(math.asin(min(1.0, abs(m[0])))),
        "ap_deg": math.degrees(math.asin(min(1.0, abs(m[1])))),
        "roll_deg": math.degrees(math.asin(min(1.0, abs(m[2])))),
        "tilt_range_deg": tilt_range,
        "sagittal": float(abs(axis[2])),
        "motion_g": motion_rms,
        "jolt_g": jolt_rms,
        "periodicity": periodicity,
    }
    still = tilt_range < STILL_TILT_DEG and motion_rms < STILL_MOTION_G
    return feats, still


def _prepare(t_s: np.ndarray, acc_ms2: np.ndarray, mounting: np.ndarray | None) -> np.ndarray:
    acc_g = np.asarray(acc_ms2, dtype=float) / GRAVITY_MS2
    if mounting is not None:
        acc_g = acc_g @ np.asarray(mounting, dtype=float).T
    return _to_grid(np.asarray(t_s, dtype=float), acc_g)


def extract_features(
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
    *,
    mounting: np.ndarray | None = None,
) -> dict[str, float]:
    """Physical features of one window (see the module docstring). ``gyr_rad_s`` is ignored."""
    t_s, acc = _as_window((t_s, acc_ms2))
    if len(t_s) < 2 or float(np.nanmax(t_s) - np.nanmin(t_s)) <= 0:
        raise ValueError("a window needs at least two samples spanning some time")
    feats, _ = _features_from_grid(_prepare(t_s, acc, mounting))
    return feats


def _vector(feats: Mapping[str, float], names: Sequence[str]) -> np.ndarray:
    out = np.empty(len(names))
    for i, k in enumerate(names):
        val = float(feats[k])
        out[i] = math.log10(max(val, 0.0) + _LOG_OFFSET[k]) if k in _LOG_FEATURES else val
    return out


_LOG_OFFSET = {"tilt_range_deg": 0.5, "motion_g": 1e-3, "jolt_g": 1e-3}


def _windows(n: int, fs: float, window_s: float, hop_s: float) -> list[slice]:
    w, h = int(round(window_s * fs)), max(1, int(round(hop_s * fs)))
    if n <= w:
        return [slice(0, n)]
    starts = list(range(0, n - w + 1, h))
    if starts[-1] + w < n:  # cover the tail too
        starts.append(n - w)
    return [slice(s, s + w) for s in starts]


# --------------------------------------------------------------------------------------------
# Model


@dataclass(frozen=True)
class RecognitionModel:
    """Gaussian naive Bayes on standardised features."""

    classes: tuple[str, ...]
    feature_names: tuple[str, ...]
    center: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    means: np.ndarray  # (c, d), standardised units
    variances: np.ndarray  # (c, d), standardised units
    temperature: float = 1.0
    z_min: np.ndarray | None = None  # (d,) training envelope, standardised units
    z_max: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def z(self, feats: Mapping[str, float]) -> np.ndarray:
        return (_vector(feats, self.feature_names) - self.center) / self.scale

    def log_likelihoods(self, z: np.ndarray) -> np.ndarray:
        """Per-class log-likelihood (c,) of one standardised feature vector."""
        dz = (z[None, :] - self.means) ** 2 / self.variances
        return -0.5 * (dz.sum(axis=1) + np.log(2 * np.pi * self.variances).sum(axis=1))

    def excess(self, z: np.ndarray) -> float:
        """How far (in overall standard deviations) a window lies outside the range of every
        feature seen in training; 0 inside the envelope."""
        if self.z_min is None or self.z_max is None:
            return 0.0
        return float(max(0.0, np.max(self.z_min - z), np.max(z - self.z_max)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "hipsense.recognition/1",
            "classifier": "gaussian_naive_bayes",
            **self.meta,
            "classes": list(self.classes),
            "feature_names": list(self.feature_names),
            "log10_features": sorted(_LOG_FEATURES & set(self.feature_names)),
            "log10_offsets": {k: _LOG_OFFSET[k] for k in self.feature_names if k in _LOG_OFFSET},
            "center": _rounded(self.center),
            "scale": _rounded(self.scale),
            "means": [_rounded(r) for r in self.means],
            "variances": [_rounded(r) for r in self.variances],
            "temperature": round(float(self.temperature), 4),
            "z_min": None if self.z_min is None else _rounded(self.z_min),
            "z_max": None if self.z_max is None else _rounded(self.z_max),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecognitionModel:
        known = {"format", "classifier", "classes", "feature_names", "log10_features",
                 "log10_offsets", "center", "scale", "means", "variances", "temperature",
                 "z_min", "z_max"}
        names = tuple(d["feature_names"])
        unknown_feats = set(names) - set(FEATURE_NAMES)
        if unknown_feats:
            raise ValueError(f"model uses unknown features {sorted(unknown_feats)}")
        offsets = d.get("log10_offsets", {})
        if any(_LOG_OFFSET.get(k) != v for k, v in offsets.items()):
            raise ValueError(f"model's log10 offsets {offsets} differ from this code's")
        return cls(
            classes=tuple(d["classes"]),
            feature_names=names,
            center=np.asarray(d["center"], dtype=float),
            scale=np.asarray(d["scale"], dtype=float),
            means=np.asarray(d["means"], dtype=float),
            variances=np.asarray(d["variances"], dtype=float),
            temperature=float(d.get("temperature", 1.0)),
            z_min=None if d.get("z_min") is None else np.asarray(d["z_min"], dtype=float),
            z_max=None if d.get("z_max") is None else np.asarray(d["z_max"], dtype=float),
            meta={k: v for k, v in d.items() if k not in known},
        )


def _rounded(a: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in a]


def save_model(model: RecognitionModel, path: str | Path) -> None:
    """Write ``model`` as the shipped file is written (JSON, one-space indent, final newline).

    The shipped model is rebuilt from the MEx folder with::

        python -c "from hipsense.evaluation.mex import train_mex_model; \\
            from hipsense.exercises.recognition import save_model; \\
            save_model(train_mex_model('DIR'), 'hipsense/exercises/recognition_model.json')"

    Training is deterministic; a test checks that this reproduces the shipped file byte for byte.
    """
    Path(path).write_text(json.dumps(model.to_dict(), indent=1) + "\n", encoding="utf-8")


@lru_cache(maxsize=1)
def load_model() -> RecognitionModel:
    """The shipped model (learned from MEx), ``hipsense/exercises/recognition_model.json``."""
    text = resources.files("hipsense.exercises").joinpath("recognition_model.json").read_text()
    return RecognitionModel.from_dict(json.loads(text))


VARIANCE_FLOOR = 0.05
"""Per-class variances are floored at this share of the overall (standardised) variance."""


def _window_features(t_s: np.ndarray, acc_ms2: np.ndarray, window_s: float, hop_s: float,
                     mounting: np.ndarray | None = None) -> list[tuple[dict[str, float], bool]]:
    grid = _prepare(t_s, acc_ms2, mounting)
    if len(grid) < MIN_WINDOW_S * GRID_HZ:
        return []
    return [_features_from_grid(grid[s]) for s in _windows(len(grid), GRID_HZ, window_s, hop_s)]


WindowSet = list[tuple[str, np.ndarray]]
"""One subject's training windows: (exercise id, raw feature vector)."""


def window_vectors(
    recordings: Iterable[tuple[str, np.ndarray, np.ndarray]],
    *,
    feature_names: Sequence[str] = FEATURE_NAMES,
    window_s: float = WINDOW_S,
    hop_s: float = HOP_S,
) -> WindowSet:
    """Feature vectors of every window of some ``(exercise_id, t_s, acc_ms2)`` recordings."""
    names = tuple(feature_names)
    return [
        (ex, _vector(f, names))
        for ex, t_s, acc in recordings
        for f, _still in _window_features(t_s, acc, window_s, hop_s)
    ]


def _fit(windows_by_subject: Mapping[str, WindowSet], names: tuple[str, ...],
         meta: Mapping[str, Any] | None) -> RecognitionModel:
    X_rows, labels, weights = [], [], []
    for subject in sorted(windows_by_subject):
        rows = windows_by_subject[subject]
        for ex, vec in rows:
            X_rows.append(vec)
            labels.append(ex)
            weights.append(1.0 / len(rows))
    if not X_rows:
        raise ValueError("no recording long enough to train on")
    X, y, wts = np.array(X_rows), np.array(labels), np.array(weights)
    center = np.average(X, axis=0, weights=wts)
    scale = np.sqrt(np.average((X - center) ** 2, axis=0, weights=wts))
    scale[scale <= 0] = 1.0
    Z = (X - center) / scale
    classes = tuple(sorted(set(labels)))
    means = np.array([np.average(Z[y == c], axis=0, weights=wts[y == c]) for c in classes])
    variances = np.array(
        [np.average((Z[y == c] - means[i]) ** 2, axis=0, weights=wts[y == c])
         for i, c in enumerate(classes)]
    ) + VARIANCE_FLOOR
    return RecognitionModel(classes, names, center, scale, means, variances,
                            z_min=Z.min(axis=0), z_max=Z.max(axis=0), meta=dict(meta or {}))


def _fit_temperature(windows_by_subject: Mapping[str, WindowSet],
                     names: tuple[str, ...]) -> float:
    """Temperature that makes window posteriors honest on people the model has not seen.

    Leave-one-subject-out inside the training set: each subject's windows are scored by a model
    fitted on the others, and the temperature minimises their negative log-likelihood.
    """
    subjects = sorted(windows_by_subject)
    if len(subjects) < 3:
        return 1.0
    lls, truth = [], []
    for s in subjects:
        inner = _fit({k: v for k, v in windows_by_subject.items() if k != s}, names, None)
        for ex, vec in windows_by_subject[s]:
            if ex in inner.classes:
                lls.append(inner.log_likelihoods((vec - inner.center) / inner.scale))
                truth.append(inner.classes.index(ex))
    if not lls:
        return 1.0
    L, t = np.array(lls), np.array(truth)
    best_T, best_nll = 1.0, math.inf
    for T in np.exp(np.linspace(np.log(0.5), np.log(50.0), 60)):
        a = L / T
        a = a - a.max(axis=1, keepdims=True)
        logp = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
        nll = float(-logp[np.arange(len(t)), t].mean())
        if nll < best_nll:
            best_T, best_nll = float(T), nll
    return best_T


def fit_recognition_model(
    windows_by_subject: Mapping[str, WindowSet],
    *,
    feature_names: Sequence[str] = FEATURE_NAMES,
    meta: Mapping[str, Any] | None = None,
) -> RecognitionModel:
    """:func:`train_recognition_model` from precomputed :func:`window_vectors` (one list per
    subject), so that leave-one-subject-out evaluation computes every feature once."""
    names = tuple(feature_names)
    model = _fit(windows_by_subject, names, meta)
    T = _fit_temperature(windows_by_subject, names)
    return RecognitionModel(model.classes, names, model.center, model.scale, model.means,
                            model.variances, temperature=T, z_min=model.z_min, z_max=model.z_max,
                            meta=dict(meta or {}))


def train_recognition_model(
    files_by_subject: Mapping[str, Iterable[tuple[str, np.ndarray, np.ndarray]]],
    *,
    feature_names: Sequence[str] = FEATURE_NAMES,
    window_s: float = WINDOW_S,
    hop_s: float = HOP_S,
    meta: Mapping[str, Any] | None = None,
) -> RecognitionModel:
    """Learn the model from recordings: ``{subject: [(exercise_id, t_s, acc_ms2), ...]}``.

    Every window (``window_s`` long, every ``hop_s``) of every recording is one training example;
    each subject weighs the same whatever the length of their recordings, so that no one person
    dominates. Class means and variances are those of the standardised features (variances
    floored at ``VARIANCE_FLOOR``); the posterior temperature is chosen leave-one-subject-out so
    that the confidence means what it says on new people. Deterministic.
    """
    names = tuple(feature_names)
    wins = {
        s: window_vectors(recs, feature_names=names, window_s=window_s, hop_s=hop_s)
        for s, recs in files_by_subject.items()
    }
    return fit_recognition_model(wins, feature_names=names, meta=meta)


# --------------------------------------------------------------------------------------------
# Recognition


def _candidate_index(model: RecognitionModel, candidates: Iterable[str] | None) -> list[int]:
    if candidates is None:
        return list(range(len(model.classes)))
    cands = list(dict.fromkeys(candidates))
    idx = [model.classes.index(c) for c in cands if c in model.classes]
    return idx


def _posterior(model: RecognitionModel, z: np.ndarray, idx: list[int]) -> np.ndarray:
    ll = model.log_likelihoods(z)[idx] / model.temperature
    ll -= ll.max()
    p = np.exp(ll)
    return p / p.sum()


ENVELOPE_MARGIN = 1.0
"""A window with a feature more than this many standard deviations beyond the training range
is "atypical" (unlike any exercise seen)."""


def _decide(model: RecognitionModel, idx: list[int], logp: np.ndarray, excess: float,
            still: bool, min_confidence: float) -> Recognition:
    p = np.exp(logp - logp.max())
    p /= p.sum()
    scores = {model.classes[i]: float(p[j]) for j, i in enumerate(idx)}
    best = int(np.argmax(p))
    conf = float(p[best])
    if min_confidence <= 0.0:  # forced choice
        return Recognition(model.classes[idx[best]], conf, scores, None)
    if still:
        return Recognition(UNKNOWN, conf, scores, "still")
    if excess > ENVELOPE_MARGIN:
        return Recognition(UNKNOWN, conf, scores, "atypical")
    if conf < min_confidence:
        return Recognition(UNKNOWN, conf, scores, "low_confidence")
    return Recognition(model.classes[idx[best]], conf, scores, None)


def recognise(
    window: Any,
    candidates: Iterable[str] | None = None,
    *,
    model: RecognitionModel | None = None,
    mounting: np.ndarray | None = None,
    min_confidence: float = MIN_CONFIDENCE,
) -> Recognition:
    """Name the exercise in one window of samples.

    ``window`` is a :class:`Window`, any object with ``t_s`` and ``acc_ms2`` attributes, a
    mapping with those keys, or a tuple ``(t_s, acc_ms2[, gyr_rad_s])``. ``candidates`` restricts
    the answer to some exercise ids (e.g. the prescription's); ids the model does not know are
    ignored. The answer is ``"unknown"`` when the window is shorter than ``MIN_WINDOW_S``, when
    the thigh is still (no movement above sensor noise: a motionless thigh does not show which
    exercise, if any, is being done), when the window is unlike anything seen in training, or
    when the confidence is below ``min_confidence``. ``min_confidence=0`` asks for a forced
    choice: only a window too short to score is then "unknown".
    """
    model = model or load_model()
    t_s, acc = _as_window(window)
    idx = _candidate_index(model, candidates)
    if not idx:
        return Recognition(UNKNOWN, 0.0, {}, "no_candidates")
    if len(t_s) < 2 or float(np.nanmax(t_s) - np.nanmin(t_s)) < MIN_WINDOW_S - 1.0 / GRID_HZ:
        return Recognition(UNKNOWN, 0.0, {}, "too_short")
    feats, still = _features_from_grid(_prepare(t_s, acc, mounting))
    z = model.z(feats)
    logp = np.log(_posterior(model, z, idx))
    return _decide(model, idx, logp, model.excess(z), still, min_confidence)


def recognise_recording(
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    candidates: Iterable[str] | None = None,
    *,
    model: RecognitionModel | None = None,
    mounting: np.ndarray | None = None,
    window_s: float = WINDOW_S,
    hop_s: float = HOP_S,
    min_confidence: float = MIN_CONFIDENCE,
) -> Recognition:
    """Name the exercise of a whole recording (one set): pool evidence over sliding windows.

    Each ``window_s`` window (every ``hop_s``) gives a posterior over the candidates; the
    recording's score is the mean log posterior (each floored at 1e-3 so that one odd window
    cannot veto). Unlike :func:`recognise`, still windows take part: the recording as a whole is
    known to be an exercise set, and the posture of a still leg (the lower leg in clams, say) is
    evidence. The answer is ``"unknown"`` when the recording is shorter than ``MIN_WINDOW_S``,
    typically unlike the training data, or the pooled confidence is below ``min_confidence``.
    """
    model = model or load_model()
    t_s, acc = _as_window((t_s, acc_ms2))
    idx = _candidate_index(model, candidates)
    if not idx:
        return Recognition(UNKNOWN, 0.0, {}, "no_candidates")
    if len(t_s) < 2:
        return Recognition(UNKNOWN, 0.0, {}, "too_short")
    names = model.feature_names
    vectors = [_vector(f, names) for f, _s in _window_features(t_s, acc, window_s, hop_s, mounting)]
    return recognise_from_vectors(vectors, candidates, model=model, min_confidence=min_confidence)


def recognise_from_vectors(
    vectors: Sequence[np.ndarray],
    candidates: Iterable[str] | None = None,
    *,
    model: RecognitionModel | None = None,
    min_confidence: float = MIN_CONFIDENCE,
) -> Recognition:
    """The pooled decision of :func:`recognise_recording`, from its windows' feature vectors
    (as :func:`window_vectors` makes them)."""
    model = model or load_model()
    idx = _candidate_index(model, candidates)
    if not idx:
        return Recognition(UNKNOWN, 0.0, {}, "no_candidates")
    if len(vectors) == 0:
        return Recognition(UNKNOWN, 0.0, {}, "too_short")
    logps, excess = [], []
    for vec in vectors:
        z = (np.asarray(vec, dtype=float) - model.center) / model.scale
        logps.append(np.log(np.maximum(_posterior(model, z, idx), 1e-3)))
        excess.append(model.excess(z))
    logp = np.mean(logps, axis=0)
    return _decide(model, idx, logp, float(np.median(excess)), False, min_confidence)
