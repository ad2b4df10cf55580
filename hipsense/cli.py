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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the full catalogue as JSON.")
def exercises(as_json: bool) -> None:
    """List the exercise catalogue: id, name, posture, how it is measured, default dose."""
    import json

    from hipsense.exercises.catalogue import load_catalogue

    catalogue = load_catalogue()
    if as_json:
        click.echo(json.dumps(catalogue.to_dict(), indent=2, ensure_ascii=False))
        return
    rows = [("id", "name", "posture", "measure", "dose")]
    rows += [(s.id, s.name, s.posture, s.measure, s.describe_dose()) for s in catalogue.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        click.echo("  ".join(cells))


if __name__ == "__main__":  # pragma: no cover
    main()
