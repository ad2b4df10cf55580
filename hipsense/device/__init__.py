"""Sensors and BLE links: decoders, the bleak link, recordings, the emulated sensor.

Knows nothing of ``hipsense.signal`` or ``hipsense.exercises``: it yields timestamped samples in
SI units in the sensor frame.
"""
