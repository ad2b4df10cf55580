"""Calibration: ``hipsense calibrate`` and the files it leaves for the service.

- :mod:`.flow`: the guided set-up of one sensor on one thigh (steps, retries, the sensor link);
- :mod:`.ui`: its terminal side (prompts, progress bars), in click;
- :mod:`.store`: the versioned calibration file, written atomically, validated when read;
- :mod:`.paths`: where that file lives, importable without numpy or scipy (the service asks
  it first, and loads the store, and with it scipy, only when a file exists).

The maths is in :mod:`hipsense.signal.calibration`. Nothing is imported here, so importing
:mod:`.paths` stays cheap.
"""
