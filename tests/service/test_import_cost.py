"""What the Pi's service imports: never scipy, even with the recogniser working; the recogniser
only when the plan needs it. Every probe runs in a fresh interpreter (:func:`fresh`).

The main probe runs as ``hipsense run`` would: the command-line module, the service
and everything it imports when running (MQTT, BLE, the sensor links), then the session engine
with a calibrated sensor, recognition on and a bridge prescribed (a class of the recognition
model), fed 30 s of a real recording so that windows are actually recognised. scipy costs
~55 MB resident and seconds of start-up on a Pi (issue 14); this fails the moment anything on
that path imports it, and names the module that did.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def fresh(code: str, *args: str) -> str:
    """Run ``code`` in a new interpreter from the repository root; its last line of output."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]

SERVICE_RUN = """
import datetime as dt, json, sys, tempfile
from pathlib import Path

import hipsense.cli, hipsense.service.service, hipsense.service.sensors, hipsense.publish.mqtt, hipsense.device.ble
import numpy as np
from hipsense import protocol as p
from hipsense.device.samples import ImuSamples
from hipsense.publish import Outbox
from hipsense.service.config import SessionConfig
from hipsense.service.engine import SessionEngine
from hipsense.service.live_angle import CalibratedAngle
from hipsense.service.results import ResultPublisher
from hipsense.service.timebase import Timebase
from hipsense.service.voice import SilentSpeaker, Voice
from hipsense.signal.calibration import Calibration

folder = Path(tempfile.mkdtemp())
live = []
publisher = ResultPublisher("p-0001", Outbox(folder / "outbox.sqlite"), send_live=lambda e: live.append(e) or True)
envelope = p.build_prescription("p-0001", version=1, updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                                exercises=[p.PrescribedExercise(1, "bridge", 3, 10, 0, ("right",))])
engine = SessionEngine(sensor_sides=["right"], publisher=publisher, voice=Voice(SilentSpeaker()),
                       timebase=Timebase(monotonic=lambda: 0.0, wall=lambda: 1.7e9),
                       settings=SessionConfig(recognition=True),
                       prescription=p.prescription_from_message(p.parse_message(envelope.topic, envelope.payload)))
engine.channels[0].angle = CalibratedAngle(Calibration(mounting=((0, 0, 1), (-1, 0, 0), (0, -1, 0)), side="right"))
data = np.load(sys.argv[1])  # read by the test: hipsense.evaluation is offline code, not the service's
t, acc, gyr = data["t"], data["acc"], data["gyr"]
keep = t < 30.0
for a in range(0, int(keep.sum()), 4):
    engine.on_samples(0, ImuSamples(t_s=t[a:a + 4], acc_ms2=acc[a:a + 4], gyr_rad_s=gyr[a:a + 4]))
print(json.dumps({
    "recognised": engine.switcher.last_answer,
    "live": len(live),
    "scipy": sorted(name for name in sys.modules if name == "scipy" or name.startswith("scipy.")),
    "recogniser_loaded": "hipsense.exercises.recognition" in sys.modules,
}))
"""


def test_the_service_with_the_recogniser_imports_no_scipy(uci_s1_e3, tmp_path):
    t, acc, gyr = uci_s1_e3
    data = tmp_path / "uci.npz"
    np.savez(data, t=np.asarray(t, float), acc=np.asarray(acc, float), gyr=np.asarray(gyr, float))
    report = json.loads(fresh(SERVICE_RUN, str(data)))
    assert report["recogniser_loaded"] and report["recognised"] is not None, report  # it did run
    assert report["live"] > 0
    assert report["scipy"] == [], f"scipy entered the service's imports: {report['scipy'][:10]}"


def test_the_check_would_see_scipy():
    """The probe is not blind: importing scipy.signal in the same way is reported."""
    assert fresh("import sys, scipy.signal; print(any(n.startswith('scipy.') for n in sys.modules))") == "True"


def test_an_uncalibrated_service_never_imports_scipy():
    code = "import sys, hipsense.service.service, hipsense.service.sensors, hipsense.service.engine; print('scipy' in sys.modules)"
    assert fresh(code) == "False"


def test_the_recogniser_is_loaded_only_for_a_plan_that_needs_it(tmp_path):
    code = f"""
import sys
from tests.service.test_engine import Rig, rx
from pathlib import Path
rig = Rig(Path({str(tmp_path)!r}), None, recognition=True)  # no prescription yet
rig.engine.on_prescription(rx())  # straight-leg raise: not a recogniser class
before = 'hipsense.exercises.recognition' in sys.modules
rig.engine.on_prescription(rx(version=2, exercise="bridge", sides=("both",)))
print(before, 'hipsense.exercises.recognition' in sys.modules)
"""
    assert fresh(code).split() == ["False", "True"]
