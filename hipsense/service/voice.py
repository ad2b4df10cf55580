"""Spoken cues for a patient without a screen: counts, hold countdowns, "switch sides", ...

:class:`Voice` decides *what* to say; a speaker says it. :class:`EspeakSpeaker` runs
``espeak-ng`` in a subprocess from a thread of its own, so speaking never blocks the BLE loop
or the counting, and phrases never talk over each other. When the queue is full (the patient
does reps faster than the phrases can be spoken) the oldest waiting phrase is dropped: a stale
count is worse than a skipped one. Without espeak-ng, or with ``voice = off``, nothing is
spoken (:class:`SilentSpeaker`).
"""

from __future__ import annotations

import collections
import logging
import shutil
import subprocess
import threading
from typing import Protocol

__all__ = ["EspeakSpeaker", "SilentSpeaker", "Speaker", "Voice", "make_speaker"]

log = logging.getLogger(__name__)


class Speaker(Protocol):
    def say(self, phrase: str) -> None: ...
    def close(self) -> None: ...


class SilentSpeaker:
    """Says nothing (voice off, or no speech engine installed)."""

    def say(self, phrase: str) -> None:
        pass

    def close(self) -> None:
        pass


class EspeakSpeaker:
    """Speaks through ``espeak-ng`` from a background thread, one phrase at a time."""

    def __init__(self, executable: str, *, max_waiting: int = 3, words_per_minute: int = 150) -> None:
        self._command = [executable, "-s", str(words_per_minute)]
        self._waiting: collections.deque[str] = collections.deque(maxlen=max_waiting)
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="hipsense-voice", daemon=True)
        self._thread.start()

    def say(self, phrase: str) -> None:
        with self._wake:
            self._waiting.append(phrase)  # maxlen drops the oldest
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                phrase = self._waiting.popleft()
            try:
                subprocess.run([*self._command, phrase], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=15, check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("voice cue failed: %s", exc)


def make_speaker(enabled: bool) -> Speaker:
    """espeak-ng when enabled and installed, else silence (logged once, so it is not a mystery)."""
    if not enabled:
        return SilentSpeaker()
    executable = shutil.which("espeak-ng") or shutil.which("espeak")
    if executable is None:
        log.info("voice cues are on but espeak-ng is not installed (apt-get install espeak-ng); staying silent")
        return SilentSpeaker()
    return EspeakSpeaker(executable)


def _exercise_name(exercise: str) -> str:
    from hipsense.exercises.catalogue import load_catalogue

    catalogue = load_catalogue()
    if exercise in catalogue:
        return catalogue[exercise].name.replace('"', "")
    return exercise.replace("_", " ")


class Voice:
    """The cues. Call from the processing thread; every method returns at once."""

    def __init__(self, speaker: Speaker) -> None:
        self.speaker = speaker

    def start_exercise(self, exercise: str, side: str, sets: int | None = None, reps: int | None = None) -> None:
        what = _exercise_name(exercise)
        where = {"left": ", left leg", "right": ", right leg"}.get(side, "")
        dose = f". {sets} sets of {reps}" if sets and reps else ""
        self.speaker.say(f"{what}{where}{dose}.")

    def count(self, n: int) -> None:
        self.speaker.say(str(n))

    def countdown(self, seconds_left: int) -> None:
        """One cue of a hold's countdown (``signal/countdown.py`` decides which and when):
        the whole seconds left, 0 meaning "relax"."""
        self.speaker.say("relax" if seconds_left <= 0 else str(seconds_left))

    def set_done(self, set_index: int, sets: int | None) -> None:
        rest = f" of {sets}" if sets else ""
        self.speaker.say(f"Set {set_index}{rest} done. Rest.")

    def switch_sides(self, side: str) -> None:
        self.speaker.say(f"Switch sides: now the {side} leg." if side in ("left", "right") else "Switch sides.")

    def session_done(self) -> None:
        self.speaker.say("All done for today. Well done.")

    def ask_pain_checkin(self) -> None:
        """After a session: the patient's page (service/patient_page.py) takes the answer."""
        self.speaker.say("How is your pain now? Tell me on your phone, on the hipsense page.")

    def sensor_disconnected(self) -> None:
        self.speaker.say("Sensor disconnected.")

    def sensor_connected(self) -> None:
        self.speaker.say("Sensor connected.")

    def results_not_saved(self) -> None:
        """The results cannot be written (a full or failing memory card): they wait in memory,
        and a power cut loses them. Only the patient can keep the Pi on and call for help; the
        dashboard sees no gap (results are numbered only when stored)."""
        self.speaker.say("Your results cannot be saved: the memory card is full. "
                         "Keep me switched on and call your clinic.")

    def results_saved_again(self) -> None:
        self.speaker.say("Your results are saved again.")

    def close(self) -> None:
        self.speaker.close()
