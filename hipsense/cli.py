"""The ``hipsense`` command line: a thin click group.

Each command imports what it needs inside its body, so ``hipsense --help`` stays fast on a
Raspberry Pi Zero and the service never pays for code it does not run.
"""

from __future__ import annotations

import click

from hipsense import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hipsense")
def main() -> None:
    """hipsense: count reps and holds of hip-rehab exercises from a thigh IMU."""


if __name__ == "__main__":  # pragma: no cover
    main()
