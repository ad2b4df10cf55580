"""Voice cues. The cue logic is tested with a fake speaker that records the phrases it is
given (RecordingSpeaker), since the test machine has no speech engine and no loudspeaker; the
espeak-ng path is tested with a stand-in executable that writes what it was asked to say."""

from __future__ import annotations

import os
import time

from hipsense.service.voice import EspeakSpeaker, SilentSpeaker, Voice, make_speaker
from tests.service.fakes import RecordingSpeaker


def test_counts_countdowns_and_cues_are_spoken_in_order():
    speaker = RecordingSpeaker()
    voice = Voice(speaker)
    voice.start_exercise("clam_shells", "left", 3, 12)
    voice.count(1)
    voice.count(2)
    for seconds_left in (5, 4, 3, 2, 1, 0):  # the countdown kernel decides which and when
        voice.countdown(seconds_left)
    voice.set_done(1, 3)
    voice.switch_sides("right")
    voice.sensor_disconnected()
    voice.session_done()
    assert speaker.phrases == [
        "Clam Shells, left leg. 3 sets of 12.", "1", "2",
        "5", "4", "3", "2", "1", "relax",
        "Set 1 of 3 done. Rest.", "Switch sides: now the right leg.", "Sensor disconnected.",
        "All done for today. Well done.",
    ]


def test_voice_off_or_no_espeak_means_silence(monkeypatch):
    assert isinstance(make_speaker(False), SilentSpeaker)
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert isinstance(make_speaker(True), SilentSpeaker)


def test_espeak_runs_in_the_background_one_phrase_at_a_time(tmp_path):
    said = tmp_path / "said.txt"
    fake = tmp_path / "espeak-ng"
    fake.write_text(f'#!/bin/sh\nsleep 0.2\nfor last; do :; done\necho "$last" >> {said}\n')
    fake.chmod(0o755)
    speaker = EspeakSpeaker(str(fake), max_waiting=2)
    started = time.monotonic()
    speaker.say("1")
    time.sleep(0.1)  # "1" is being spoken now
    for phrase in ("2", "3", "4"):
        speaker.say(phrase)
    assert time.monotonic() - started < 0.2  # never blocks the caller
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(said.read_text().split() if said.exists() else []) < 3:
        time.sleep(0.05)
    speaker.close()
    spoken = said.read_text().split()
    # The first phrase was already being spoken; of the three waiting, the oldest was dropped.
    assert spoken == ["1", "3", "4"]
    assert os.access(fake, os.X_OK)
