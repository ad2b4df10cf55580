"""The ``hipsense`` command line: a thin click group.

Each command imports what it needs inside its body, so ``hipsense --help`` stays fast on a
Raspberry Pi Zero and the service never pays for code it does not run.
"""

from __future__ import annotations

import click
import numpy as np

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


@main.command("eval")
@click.argument("dataset", type=click.Choice(["uci-pt", "mex"]))
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="One JSON object (docs/evaluation.md's contract).")
def eval_cmd(dataset: str, directory: str, as_json: bool) -> None:
    """Measure accuracy on a public data set laid out as in shared/datasets."""
    import json
    from pathlib import Path

    from hipsense.errors import DatasetError

    try:
        if dataset == "uci-pt":
            from hipsense.evaluation.uci import evaluate_uci

            report = evaluate_uci(Path(directory))
        else:
            from hipsense.evaluation.mex import evaluate_mex

            report = evaluate_mex(Path(directory))
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"data set: {report['dataset']}")
    for key, value in report["summary"].items():
        click.echo(f"  {key:24s} {value}")
    for entry in report["sets"]:
        extra = f" predicted {entry['predicted']}" if "predicted" in entry else ""
        click.echo(
            f"  {entry['id']:22s} {entry['exercise']:28s} true {entry['true']} "
            f"counted {entry['counted']}{extra}"
        )


def _replay(path: str, exercise: str, speed: float, hold: float | None, chunk_s: float) -> None:
    import time

    from hipsense.errors import HipsenseError
    from hipsense.exercises.catalogue import get_exercise
    from hipsense.exercises.tracker import ExerciseTracker, TrackerSettings
    from hipsense.recordings import read_samples

    try:
        spec = get_exercise(exercise)
        rec = read_samples(path)
    except HipsenseError as exc:
        raise click.ClickException(str(exc)) from exc
    tracker = ExerciseTracker(
        spec, TrackerSettings(hold_target_s=hold), has_gyro=rec.gyr_rad_s is not None
    )
    click.echo(f"replaying {path} ({rec.source}, {rec.t_s[-1] - rec.t_s[0]:.0f} s) as {spec.id}")
    t0_wall = time.monotonic()
    t0 = float(rec.t_s[0])
    edges = np.arange(t0, float(rec.t_s[-1]) + chunk_s, chunk_s)
    idx = np.searchsorted(rec.t_s, edges)
    total = 0
    for a, b in zip(idx[:-1], idx[1:]):
        if speed > 0:  # pace the replay like a live sensor
            due = (float(rec.t_s[b - 1]) - t0) / speed if b > a else 0.0
            delay = due - (time.monotonic() - t0_wall)
            if delay > 0:
                time.sleep(delay)
        gyr = None if rec.gyr_rad_s is None else rec.gyr_rad_s[a:b]
        out = tracker.push(rec.t_s[a:b], rec.acc_ms2[a:b], gyr)
        total += _print_events(out)
    total += _print_events(tracker.flush())
    click.echo(f"{total} reps")


def _print_events(out) -> int:  # noqa: ANN001 - TrackerOutput
    for r in out.reps:
        flags = f"  [{', '.join(r.flags)}]" if r.flags else ""
        click.echo(
            f"{r.end_t_s:8.2f} s  set {r.set_index} rep {r.rep_index:2d}  "
            f"ROM {r.rom_deg:5.1f}°  hold {r.hold_s:4.1f} s  "
            f"{r.duration_s:4.1f} s  peak {r.peak_speed_dps:5.0f}°/s{flags}"
        )
    for st in out.sets:
        click.echo(
            f"{st.end_t_s:8.2f} s  set {st.set_index} done: {st.reps} reps, "
            f"median ROM {st.median_rom_deg:.1f}°, median hold {st.median_hold_s:.1f} s"
        )
    return len(out.reps)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option("--exercise", "-e", required=True, help="Catalogue id (see `hipsense exercises`).")
@click.option("--speed", type=float, default=0.0, show_default=True,
              help="Multiple of real time; 0 = as fast as possible.")
@click.option("--hold", type=float, default=None, help="Prescribed hold, seconds.")
@click.option("--chunk", type=float, default=0.2, show_default=True,
              help="Seconds of samples per push, like BLE notifications.")
def replay(file: str, exercise: str, speed: float, hold: float | None, chunk: float) -> None:
    """Replay a recording through the live counter and print events as they happen."""
    _replay(file, exercise, speed, hold, chunk)


@main.command()
@click.option("--speed", type=float, default=10.0, show_default=True, help="Multiple of real time.")
def demo(speed: float) -> None:
    """Replay a real recording (UCI s1, straight-leg raise) through the counter."""
    from importlib.resources import files

    path = files("hipsense") / "data" / "uci_s1_e3_test.txt.gz"
    _replay(str(path), "straight_leg_raise", speed, 5.0, 0.2)


if __name__ == "__main__":  # pragma: no cover
    main()
