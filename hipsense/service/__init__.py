"""The Pi service (``hipsense run``): the composition root wiring device, exercises and publish.

Modules, one job each: :mod:`.config` (TOML + environment, validated), :mod:`.service` (threads,
signals, systemd), :mod:`.engine` (samples → guided, counted session), :mod:`.plan` (the
prescription and the tallies), :mod:`.results` (results → outbox, live → MQTT), :mod:`.voice`,
:mod:`.sensors` (BlueZ or emulated links), :mod:`.holds`, :mod:`.switching` (recognition),
:mod:`.state` (resume after a crash), :mod:`.homeassistant`, :mod:`.systemd`, :mod:`.logs`,
:mod:`.timebase`. Nothing is imported here, so ``hipsense --help`` stays fast.
"""
