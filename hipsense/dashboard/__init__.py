"""The therapist's dashboard: MQTT ingest into a database, and web pages with live updates.

It knows the Pi only through :mod:`hipsense.protocol` (topics, schemas, ``parse_message``,
``build_prescription``) and reaches the broker through :mod:`hipsense.publish.mqtt`, the one
module that imports paho. The exercise catalogue is read as data for the prescription editor.
Nothing here imports the signal, device or tracker layers. ``docs/dashboard.md`` is the guide.
"""
