"""The exercise catalogue (data), recognition, and trackers built on ``hipsense.signal``."""
