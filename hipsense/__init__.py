"""hipsense: measure home hip rehabilitation with a thigh-worn IMU."""

__version__ = "0.1.0"
