"""The therapist's dashboard: MQTT ingest into a database, and web pages with live updates.

It knows the Pi only through :mod:`hipsense.protocol` (topics, schemas, ``parse_message``,
``build_prescription``) and reaches the broker through :mod:`hipsense.publish.mqtt`, the one
module that imports paho. The exercises it offers are read as data
(:mod:`hipsense.protocol.exercise_list`), exported from the catalogue.
Nothing here imports the signal, device or tracker layers. ``docs/dashboard.md`` is the guide.
"""
