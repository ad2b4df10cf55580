"""``hipsense demo``: an embedded broker, the Pi service with an emulated sensor replaying a real
recording, and the dashboard, on one machine without hardware, root or servers (see run.py)."""

from hipsense.demo.run import DEFAULT_SPEED, DemoError, DemoOptions, run_demo

__all__ = ["DEFAULT_SPEED", "DemoError", "DemoOptions", "run_demo"]
