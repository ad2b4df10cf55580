"""Sensors and BLE links: everything between the radio and timestamped samples.

Knows nothing of ``hipsense.signal`` or ``hipsense.exercises``: it yields timestamped samples in
SI units in the sensor frame (:mod:`.samples`).

- the sensor registry: :mod:`.decoders` (one module per sensor type; everything about a type
  is declared there), with :mod:`.clock` and :mod:`.gaps` for timing;
- the link: :mod:`.ble` (scan and self-healing link, bleak), :mod:`.ble_errors` (failures in
  words a person can act on), :mod:`.events` (what a link emits; no bleak), :mod:`.reconnect`,
  :mod:`.replies`, :mod:`.pair` (two thighs on one adapter);
- which Bluetooth: :mod:`.backends` (BlueZ, or an emulated sensor for the command line),
  :mod:`.bumble_backend` (bleak on Google's Bumble virtual radio), :mod:`.emulator`
  (emulated sensors, one per sensor type that has one);
- recordings: :mod:`.recording_format` (the raw ``.hsrec`` format: every notification, for
  exact replay), :mod:`.recorder` (``hipsense record`` writes one), :mod:`.sample_files`
  (reads any recording or data-set file hipsense replays as samples).
"""
