"""Pure numpy/scipy signal kernels: streaming by construction, batch by the same code.

Nothing in here knows about BLE, MQTT, clocks, files or logging; it imports numpy and scipy only.
"""
