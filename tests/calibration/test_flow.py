"""The guided flow: retries with plain-language problems on a scripted feed, and the whole
`hipsense calibrate --yes` end to end on the emulated sensor (Bumble), checked against the
known mounting."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from hipsense.calibration.flow import CalibrationPlan, Feed, run_calibration
from hipsense.calibration.store import load_calibration
from hipsense.cli import main
from hipsense.errors import CalibrationError
from tests.calibration.emulated import ADDRESS, NAME, write_session_recording
from tests.calibration.sessions import rotation_error_deg, session

pytest.importorskip("bumble")


class ScriptedFeed(Feed):
    """Blocks of 8 samples from arrays, as fast as the flow takes them."""

    nominal_rate_hz = 100.0

    def __init__(self, *parts):
        self.t = np.concatenate([p[0] for p in parts])
        self.acc = np.concatenate([p[1] for p in parts])
        self.gyr = np.concatenate([p[2] for p in parts])
        self.t = np.arange(len(self.t)) / 100.0  # one clock across the parts
        self.i = 0

    async def next_block(self):
        if self.i >= len(self.t):
            raise CalibrationError("no more data")
        a, self.i = self.i, self.i + 8
        await asyncio.sleep(0)
        return self.t[a:self.i], self.acc[a:self.i], self.gyr[a:self.i]

    def discard_pending(self):
        pass


class RecordingUi:
    def __init__(self):
        self.lines = []

    def heading(self, text):
        self.lines.append(f"# {text}")

    def say(self, text):
        self.lines.append(text)

    def problem(self, text):
        self.lines.append(f"! {text}")

    async def ready(self, prompt):
        self.lines.append(f"? {prompt}")

    async def choose(self, prompt, count):
        return 1

    @contextmanager
    def progress(self, label):
        class Bar:
            def update(self, fraction):
                pass
        yield Bar()


def test_a_failed_step_says_why_and_is_tried_again():
    mounting = Rotation.random(random_state=21)
    good = session(mounting, seed=21)
    jiggly = session(mounting, seed=21, still_jiggle_deg=6.0)
    t, acc, gyr = good.part("still")
    # check + a still spell that wobbles, then a good still spell, stand, swing
    feed = ScriptedFeed(good.part("still"), jiggly.part("still"), (t, acc, gyr),
                        (t[:50], acc[:50] * 0 + [0, 0, 9.0], gyr[:50] + 1.0),  # walking over
                        good.part("stand"), good.part("swing"))
    ui = RecordingUi()
    plan = CalibrationPlan(side="right", check_s=1.0, still_s=2.0, stand_s=2.0, swing_s=4.0,
                           settle_s=0.0, max_wait_s=1.0, interactive=True)
    outcome = asyncio.run(run_calibration(feed, ui, plan, sensor_type="witmotion"))
    assert outcome.fit.ok
    assert rotation_error_deg(outcome.calibration.matrix, mounting) < 2.0
    assert outcome.attempts["still"] >= 2
    text = "\n".join(ui.lines)
    assert "! The sensor" in text and "let's try again" in text.lower()
    assert "Let's try again." in ui.lines


def test_giving_up_after_the_last_attempt_is_a_clear_error():
    mounting = Rotation.random(random_state=22)
    jiggly = session(mounting, seed=22, still_jiggle_deg=6.0)
    parts = [jiggly.part("still")] * 4
    feed = ScriptedFeed(*parts)
    plan = CalibrationPlan(check_s=0.5, still_s=2.0, settle_s=0.0, max_wait_s=0.5, attempts=2,
                           interactive=False)
    with pytest.raises(CalibrationError, match="'still' step did not succeed after 2 tries"):
        asyncio.run(run_calibration(feed, RecordingUi(), plan))


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """A recording of a person with a randomly mounted sensor: seated still 10 s, stand up,
    stand 5 s, swing 12 s, stand again.

    With `--settle 2 --still 2.5 --stand 2.5 --swing 5` the flow (content-aware steps) lands
    in the right segments for any connection delay up to ~3.5 s of sensor time.
    """
    mounting = Rotation.random(random_state=33)
    s = session(mounting, seed=33, still_s=10.0, move_s=1.0, stand_s=5.0, swing_s=12.0,
                tail_s=2.0)
    path = write_session_recording(s, tmp_path_factory.mktemp("emulated") / "session.hsrec")
    return path, mounting


@pytest.fixture
def emulator_env(monkeypatch, tmp_path, emulated):
    path, _ = emulated
    monkeypatch.setenv("HIPSENSE_BLE_BACKEND", f"emulator:{path}")
    monkeypatch.setenv("HIPSENSE_EMULATOR_SPEED", "5")
    monkeypatch.setenv("HIPSENSE_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def test_calibrate_end_to_end_on_the_emulated_sensor(emulator_env, emulated):
    _, mounting = emulated
    result = CliRunner().invoke(main, [
        "calibrate", "--sensor", ADDRESS, "--side", "right", "--yes", "--still", "2.5",
        "--stand", "2.5", "--swing", "5", "--settle", "2", "--scan-timeout", "0.3"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    stored = load_calibration(ADDRESS, emulator_env / "config" / "calibration")
    assert stored.sensor_type == "witmotion" and stored.name == NAME
    error = rotation_error_deg(stored.calibration.matrix, mounting)
    assert error < 2.0, f"mounting recovered within {error:.2f}°"
    assert "Saved to" in result.output and "swing" in result.output


def test_scan_lists_the_emulated_sensor(emulator_env):
    result = CliRunner().invoke(main, ["scan", "--timeout", "0.3"])
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()[:2]
    assert header.split() == ["name", "address", "type", "RSSI", "battery"]
    assert row.split()[:3] == [NAME, ADDRESS, "witmotion"]


def test_record_then_replay_a_raw_recording(emulator_env):
    out = emulator_env / "out.hsrec"
    result = CliRunner().invoke(main, ["record", str(out), "--sensor", ADDRESS, "--duration", "1",
                                       "--scan-timeout", "0.3"])
    assert result.exit_code == 0, result.output
    assert out.exists()
    from hipsense.device.sample_files import read_samples

    samples = read_samples(out)
    assert samples.source == "hipsense-ble:witmotion"
    assert len(samples.t_s) > 100 and samples.gyr_rad_s is not None
    # Still and seated at the start of the session: the accelerometer reads 1 g.
    assert np.allclose(np.linalg.norm(samples.acc_ms2, axis=1).mean(), 9.81, atol=0.2)
    replay = CliRunner().invoke(main, ["replay", str(out), "--exercise", "hip_abductor"])
    assert replay.exit_code == 0, replay.output
    assert "hipsense-ble:witmotion" in replay.output and replay.output.strip().endswith("reps")
    again = CliRunner().invoke(main, ["record", str(out), "--sensor", ADDRESS, "--duration", "1"])
    assert again.exit_code != 0 and "never overwritten" in again.output


def test_reference_reps_give_the_personal_range_of_motion():
    from hipsense.calibration.flow import rom_angles
    from hipsense.exercises.catalogue import get_exercise
    from tests.synth import synthesize

    mounting = Rotation.random(random_state=23)
    s = session(mounting, seed=23)
    reps = synthesize(get_exercise("hip_abductor"), seed=23, reps=3, rom_deg=30.0,
                      mounting=mounting, gyro_bias_rad_s=s.gyro_bias_rad_s)
    # ... swing, stand a moment, then the reference reps
    t, acc, gyr = s.part("still")
    feed = ScriptedFeed((t, acc, gyr), (t[:120], acc[:120], gyr[:120]), s.part("stand"),
                        s.part("swing"), s.part("stand"), (reps.t_s, reps.acc_ms2, reps.gyr_rad_s))
    plan = CalibrationPlan(check_s=1.0, still_s=2.0, stand_s=2.0, swing_s=4.0, settle_s=0.0,
                           exercise_id="hip_abductor", reference_reps=3, reference_s=11.0,
                           interactive=False)
    outcome = asyncio.run(run_calibration(feed, RecordingUi(), plan,
                                          angles_for_rom=rom_angles("hip_abductor", "right")))
    true_peaks = [r.peak_deg for r in reps.reps]
    assert outcome.rom is not None and len(outcome.rom.peaks_deg) == 3
    assert outcome.rom.rom_deg == pytest.approx(float(np.median(true_peaks)), abs=2.0)
    assert outcome.calibration.rom_for("hip_abductor") == outcome.rom
