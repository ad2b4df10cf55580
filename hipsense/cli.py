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
@click.argument("dataset", type=click.Choice(["uci-pt", "mex", "cmu"]))
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="One JSON object (docs/evaluation.md's contract).")
@click.option("--counts", is_flag=True, help="mex: count reps against rep_counts.csv (not recognition).")
@click.option("--listing", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="mex --counts: also write the per-file listing (.csv, else markdown) here.")
@click.option("--personal", is_flag=True,
              help="uci-pt: count each set with the person's reference reps from their template session.")
def eval_cmd(dataset: str, directory: str, as_json: bool, counts: bool, listing: str | None,
             personal: bool) -> None:
    """Measure accuracy on a public data set (layouts and metrics: docs/evaluation.md)."""
    import json
    from pathlib import Path

    from hipsense.errors import DatasetError

    if (counts or listing) and dataset != "mex":
        raise click.UsageError("--counts and --listing apply to the mex data set only")
    if personal and dataset != "uci-pt":
        raise click.UsageError("--personal applies to the uci-pt data set only")
    if counts or listing:
        from hipsense.evaluation import mex_counts

        try:
            report = mex_counts.evaluate_mex_counts(Path(directory))
            if listing:
                text = (mex_counts.listing_csv if listing.endswith(".csv") else mex_counts.listing_markdown)(report)
                Path(listing).write_text(text, encoding="utf-8")
        except (DatasetError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(json.dumps(report) if as_json else mex_counts.render_text(report))
        return
    try:
        if dataset == "uci-pt":
            from hipsense.evaluation.uci import evaluate_uci

            report = evaluate_uci(Path(directory), personal=personal)
        elif dataset == "mex":
            from hipsense.evaluation.mex import evaluate_mex

            report = evaluate_mex(Path(directory))
        else:
            from hipsense.evaluation.cmu import evaluate_cmu

            report = evaluate_cmu(Path(directory))
    except (DatasetError, OSError) as exc:  # mex.py says FileNotFoundError for a wrong folder
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"data set: {report['dataset']}")
    for key, value in report["summary"].items():
        click.echo(f"  {key:24s} {value}")
    if "baseline" in report:
        b = report["baseline"]["summary"]
        click.echo(f"  {'baseline (offline peaks)':24s} exact {b['exact_rate']}, within ±1 {b['within1_rate']}, "
                   f"MAE {b['mae']} (hipsense/evaluation/baseline.py)")
    for entry in report["sets"]:
        extra = f" predicted {entry['predicted']}" if "predicted" in entry else ""
        if "baseline_counted" in entry:
            extra += f" baseline {entry['baseline_counted']}"
        if "labelled_matched" in entry:
            extra += (
                f"  hand labels matched {entry['labelled_matched']}/{entry['true']},"
                f" label-to-rep offset by block {entry['label_offset_by_block_s']} s"
            )
        click.echo(
            f"  {entry['id']:22s} {entry['exercise']:28s} true {entry['true']} "
            f"counted {entry['counted']}{extra}"
        )


@main.command("eval-report")
@click.option("--datasets", type=click.Path(exists=True, file_okay=False, path_type=str), default=None,
              help="Run every evaluation on this folder (laid out as shared/datasets).")
@click.option("--from-json", "from_json", type=click.Path(exists=True, file_okay=False, path_type=str),
              default=None, help="Or read uci.json, uci_personal.json, mex_counts.json, "
                                 "mex_recognition.json, cmu.json from this folder.")
@click.option("--json-out", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Also keep the reports as JSON here.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=str), default="docs/accuracy.md",
              show_default=True)
@click.option("--evidence", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Where the catalogue's evidence goes (default: the package's exercises/evidence.json).")
def eval_report_cmd(datasets: str | None, from_json: str | None, json_out: str | None, markdown: str,
                    evidence: str | None) -> None:
    """Regenerate docs/accuracy.md and the catalogue's evidence from the evaluation reports."""
    from pathlib import Path

    from hipsense.errors import DatasetError
    from hipsense.evaluation import accuracy

    if (datasets is None) == (from_json is None):
        raise click.UsageError("give exactly one of --datasets or --from-json")
    try:
        reports = accuracy.run_reports(Path(datasets)) if datasets else accuracy.load_reports(Path(from_json))
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    if not reports:
        raise click.ClickException("no evaluation reports found")
    target = Path(evidence) if evidence else Path(__file__).parent / "exercises" / "evidence.json"
    accuracy.write_all(reports, Path(markdown), target, Path(json_out) if json_out else None)
    click.echo(f"wrote {markdown} and {target} from {', '.join(sorted(reports))}")


def _replay(path: str, exercise: str, speed: float, hold: float | None, chunk_s: float) -> None:
    import time

    from hipsense.errors import HipsenseError
    from hipsense.exercises.catalogue import get_exercise
    from hipsense.exercises.tracker import ExerciseTracker, TrackerSettings
    from hipsense.device.sample_files import read_samples

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
    """Replay a recording (UCI, MEx, hipsense CSV or a raw `hipsense record` file) through the
    live counter and print events as they happen."""
    _replay(file, exercise, speed, hold, chunk)


@main.command()
@click.option("--speed", type=click.FloatRange(0.1, 50), default=2.0, show_default=True,
              help="Replay speed of the recording, a multiple of real time.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="The dashboard's port [default: 8080 if free, else any free port].")
@click.option("--open/--no-open", "open_browser", default=None,
              help="Open the dashboard in a browser [default: when there is a display].")
@click.option("--voice", is_flag=True, help="Speak the counts and cues (needs espeak-ng).")
def demo(speed: float, port: int | None, open_browser: bool | None, voice: bool) -> None:
    """The whole system on this machine: an embedded broker, the Pi service with an emulated
    sensor replaying a real session (UCI s1, straight-leg raise) and the patient's page, and the
    dashboard with a demo clinic of five patients and their past weeks. Ctrl-C stops it."""
    try:
        from hipsense.demo import DemoOptions, run_demo
    except ModuleNotFoundError as exc:
        raise click.ClickException(f"the demo needs {exc.name}: pip install 'hipsense[demo]'") from exc
    raise SystemExit(run_demo(DemoOptions(speed=speed, port=port, open_browser=open_browser, voice=voice),
                              echo=click.echo))


def _catalogue_id(exercise: str | None) -> str | None:
    """Check an exercise id before anything slow (a scan, a connection) starts."""
    if exercise is None:
        return None
    from hipsense.errors import HipsenseError
    from hipsense.exercises.catalogue import get_exercise

    try:
        return get_exercise(exercise).id
    except (HipsenseError, KeyError) as exc:
        raise click.BadParameter(str(exc).strip("'\""), param_hint="'--exercise'") from exc


# -- sensors: scan, calibrate, record ------------------------------------------------------------
# HIPSENSE_BLE_BACKEND=emulator:<recording> (HIPSENSE_EMULATOR_SENSOR, _SPEED) runs these
# against an emulated sensor instead of the Bluetooth adapter: see hipsense/device/backends.py.


def _run_ble(job):  # noqa: ANN001, ANN202 - job: async (BleBackends) -> T
    """Run ``job`` on one event loop with the selected Bluetooth; our errors become messages."""
    import asyncio

    from hipsense.device.backends import open_ble_backends
    from hipsense.errors import HipsenseError

    async def main_job():  # noqa: ANN202
        async with open_ble_backends() as backends:
            return await job(backends)

    try:
        return asyncio.run(main_job())
    except HipsenseError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--timeout", type=click.FloatRange(0, 300, min_open=True), default=5.0, show_default=True,
              help="Seconds to listen (more than 0, at most 300).")
def scan(timeout: float) -> None:
    """List nearby supported sensors: name, address, type, signal strength, battery."""
    from hipsense.device.ble import scan_sensors

    found = _run_ble(lambda backends: scan_sensors(timeout, backend=backends.scanner))
    if not found:
        click.echo("No supported sensor found: is it switched on, charged and within a few metres?")
        return
    # Battery needs a connection; scanning only listens, so it is shown once connected
    # (`hipsense calibrate`), unless a sensor ever advertises it.
    rows = [("name", "address", "type", "RSSI", "battery")]
    rows += [(f.name or "-", f.address, f.sensor_type, f"{f.rssi} dBm", "-") for f in found]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@main.command()
@click.option("--sensor", "address", default=None, help="Sensor address (default: scan and choose).")
@click.option("--side", type=click.Choice(["left", "right"]), default=None,
              help="The thigh that wears the sensor (asked when not given).")
@click.option("--yes", "-y", "assume_yes", is_flag=True,
              help="No questions: each step starts --settle seconds after the previous one.")
@click.option("--exercise", default=None, callback=lambda _c, _p, v: _catalogue_id(v),
              help="Also measure the personal range of motion in this exercise (catalogue id).")
@click.option("--reps", type=click.IntRange(1, 50), default=3, show_default=True, help="Reference repetitions.")
@click.option("--still", "still_s", type=float, default=3.0, show_default=True, help="Seconds still.")
@click.option("--stand", "stand_s", type=float, default=3.0, show_default=True,
              help="Seconds standing upright.")
@click.option("--swing", "swing_s", type=float, default=6.0, show_default=True,
              help="Seconds of swinging.")
@click.option("--settle", "settle_s", type=float, default=2.0, show_default=True,
              help="Seconds to get into position between steps (with --yes).")
@click.option("--attempts", type=click.IntRange(1, 10), default=3, show_default=True,
              help="Tries per step before giving up.")
@click.option("--scan-timeout", type=click.FloatRange(0, 300, min_open=True), default=5.0, show_default=True)
def calibrate(address: str | None, side: str | None, assume_yes: bool, exercise: str | None,
              reps: int, still_s: float, stand_s: float, swing_s: float, settle_s: float,
              attempts: int, scan_timeout: float) -> None:
    """Set up a sensor: check it, learn how it sits on the thigh, save the calibration."""
    from hipsense.calibration.flow import CalibrationPlan, calibrate_sensor
    from hipsense.calibration.ui import ClickUi

    if side is None:
        if assume_yes:
            raise click.UsageError("--side left|right is needed with --yes")
        side = click.prompt("Which thigh wears the sensor?", type=click.Choice(["left", "right"]))
    plan = CalibrationPlan(side=side, still_s=still_s, stand_s=stand_s, swing_s=swing_s,
                           settle_s=settle_s, exercise_id=exercise, reference_reps=reps,
                           attempts=attempts, interactive=not assume_yes)
    _run_ble(lambda backends: calibrate_sensor(ClickUi(), plan, address=address,
                                               scan_timeout_s=scan_timeout, backends=backends))


@main.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=str))
@click.option("--sensor", "address", required=True, help="Sensor address (see `hipsense scan`).")
@click.option("--duration", type=float, default=None, help="Seconds (default: until Ctrl-C).")
@click.option("--type", "sensor_type", default=None,
              help="Sensor type, e.g. witmotion (default: found by scanning).")
@click.option("--scan-timeout", type=click.FloatRange(0, 300, min_open=True), default=5.0, show_default=True)
def record(out: str, address: str, duration: float | None, sensor_type: str | None,
           scan_timeout: float) -> None:
    """Record raw sensor notifications to OUT (replay it with `hipsense replay OUT`)."""
    from pathlib import Path

    from hipsense.device.recorder import record_sensor

    if Path(out).exists():
        raise click.ClickException(f"{out} exists; a recording is never overwritten")
    click.echo(f"recording {address} to {out}" + (f" for {duration:g} s" if duration else
                                                  " (Ctrl-C to stop)"))
    try:
        summary = _run_ble(lambda backends: record_sensor(
            Path(out), address, duration_s=duration, sensor_type=sensor_type,
            scan_timeout_s=scan_timeout, backends=backends,
            on_event=lambda e: click.echo(f"  {e.kind.value}: {e.detail}")))
    except KeyboardInterrupt:
        click.echo(f"stopped; the recording so far is in {out}")
        return
    click.echo(f"{summary.notifications} notifications from a {summary.sensor_type} sensor in "
               f"{summary.seconds:.1f} s, {summary.disconnects} disconnects → {summary.path}")


@main.group()
def provision() -> None:
    """Broker accounts for patients' Pis: add, revoke, list (see deploy/server/README.md).

    No option takes a password: command lines end up in `ps` and shell history.
    """


def _provision_paths(command):  # a click decorator: the options every provision command shares
    command = click.option("--broker-dir", envvar="HIPSENSE_BROKER_DIR", default="/etc/mosquitto/hipsense",
                           show_default=True, type=click.Path(file_okay=False),
                           help="The broker's passwd and acl files (and ca.crt).")(command)
    command = click.option("--state-dir", envvar="HIPSENSE_PROVISION_DIR", default="/var/lib/hipsense-provision",
                           show_default=True, type=click.Path(file_okay=False),
                           help="Registry (pseudonym <-> label) and Pi bundles; not for the broker.")(command)
    return click.option("--dashboard-user", "dashboard_users", multiple=True, default=["dashboard"],
                        envvar="HIPSENSE_DASHBOARD_USER", show_default=True,
                        help="MQTT account(s) of the dashboard, written into the ACL.")(command)


@provision.command("add")
@click.argument("label")
@click.option("--broker-host", envvar="HIPSENSE_BROKER_HOST", required=True, help="Host name the Pi connects to.")
@click.option("--broker-port", type=int, default=8883, show_default=True)
@click.option("--ca-cert", type=click.Path(dir_okay=False), default=None,
              help="CA certificate for the Pi [default: BROKER_DIR/ca.crt].")
@click.option("--pi-ca-path", default="/etc/hipsense/ca.crt", show_default=True,
              help="Where the install script puts the CA certificate on the Pi.")
@_provision_paths
def provision_add(label: str, broker_host: str, broker_port: int, ca_cert: str | None, pi_ca_path: str,
                  broker_dir: str, state_dir: str, dashboard_users: tuple[str, ...]) -> None:
    """Create a pseudonymous patient for LABEL (the clinic's own reference, kept locally only)."""
    from pathlib import Path

    from hipsense.provision import RELOAD_HINT, Broker, Layout, ProvisionError, add_patient

    layout = Layout(broker_dir=Path(broker_dir), state_dir=Path(state_dir))
    broker = Broker(host=broker_host, port=broker_port, ca_cert=Path(ca_cert) if ca_cert else None,
                    ca_path_on_pi=pi_ca_path)
    try:
        added = add_patient(layout, label, broker, dashboard_users=dashboard_users)
    except (ProvisionError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"patient id: {added.patient_id}")
    click.echo(f"Pi bundle:  {added.bundle_dir} (holds the password: copy it to the Pi, then delete it here)")
    click.echo(RELOAD_HINT)


@provision.command("revoke")
@click.argument("patient_id")
@_provision_paths
def provision_revoke(patient_id: str, broker_dir: str, state_dir: str, dashboard_users: tuple[str, ...]) -> None:
    """Remove PATIENT_ID's broker access (password and ACL) and delete its bundle."""
    from pathlib import Path

    from hipsense.provision import RELOAD_HINT, Layout, ProvisionError, revoke_patient

    try:
        revoke_patient(Layout(broker_dir=Path(broker_dir), state_dir=Path(state_dir)), patient_id,
                       dashboard_users=dashboard_users)
    except (ProvisionError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked {patient_id}: removed from the password file and the ACL")
    click.echo(f"Not yet in force: {RELOAD_HINT}")


@provision.command("list")
@_provision_paths
def provision_list(broker_dir: str, state_dir: str, dashboard_users: tuple[str, ...]) -> None:
    """List issued patient ids with their labels and state (active / revoked)."""
    from pathlib import Path

    from hipsense.provision import Layout, ProvisionError, list_patients

    layout = Layout(broker_dir=Path(broker_dir), state_dir=Path(state_dir))
    try:
        rows = list_patients(layout)
    except (ProvisionError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not rows:  # most often the wrong --state-dir, or nobody added yet: say which
        raise click.ClickException(f"no patients in {layout.registry}: add one with `hipsense provision add "
                                   "LABEL`, or point --state-dir (HIPSENSE_PROVISION_DIR) at the registry's folder")
    for row in rows:
        e = row.entry
        if not e.active:
            state = f"revoked {e.revoked_at}"
        else:  # an active patient without a password line cannot connect: say so
            state = "active" if row.has_password else "active, NO PASSWORD LINE"
        click.echo(f"{e.patient_id}  {e.created_at}  {state:30s}  {e.label}")


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="TOML config (default: $HIPSENSE_CONFIG or /etc/hipsense/hipsense.toml).")
def run(config_path: str | None) -> None:
    """Run the Pi service: sensors → counting → MQTT, until SIGTERM."""
    from hipsense.errors import ConfigError
    from hipsense.publish.errors import PublishError
    from hipsense.service.service import run_service

    try:
        code = run_service(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"invalid configuration: {exc}") from exc
    except PublishError as exc:  # e.g. the outbox's directory is not writable: say so, no traceback
        raise click.ClickException(f"cannot run: {exc}") from exc
    raise SystemExit(code)


@main.group()
def dashboard() -> None:
    """The therapist's dashboard: ingest from the broker, web pages, accounts."""


def _dashboard_db_option(command):  # a click decorator: every dashboard command opens the database
    return click.option("--db", "db_url", envvar="HIPSENSE_DASHBOARD_DB", default=None,
                        help="SQLAlchemy URL or SQLite file (default: a SQLite file under "
                             "~/.local/share/hipsense); postgresql://user@host/db for a clinic.")(command)


def _database_problem(exc: Exception, db_url: str | None) -> click.ClickException:
    """One line a person can act on for a database URL that does not open (no traceback)."""
    from sqlalchemy import exc as sa_exc

    where = db_url or "the default SQLite file"
    if isinstance(exc, sa_exc.NoSuchModuleError | sa_exc.ArgumentError):
        return click.ClickException(f"--db {where}: not a database URL hipsense knows; give a SQLite file path "
                                    "or postgresql://user@host/db")
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if "unable to open database file" in detail:
        detail += " (does the folder exist, and may this user write to it?)"
    return click.ClickException(f"cannot open the database {where}: {detail}")


def _open_database(db_url: str | None):  # noqa: ANN202 - an Engine, migrated
    """The dashboard's engine, migrated to the current schema; a bad URL or an unreachable
    server becomes a one-line error."""
    from sqlalchemy import exc as sa_exc

    from hipsense.dashboard.db import make_engine, migrate

    try:
        engine = make_engine(db_url)
        migrate(engine)
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        raise _database_problem(exc, db_url) from None
    return engine


def _check_timezone(_ctx, _param, value: str) -> str:  # noqa: ANN001 - a click callback
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise click.BadParameter(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)"
                                 ) from exc
    return value


@dashboard.command("serve")
@_dashboard_db_option
@click.option("--broker", default=None, help="Broker host[:port]; without it, pages only.")
@click.option("--broker-user", envvar="HIPSENSE_BROKER_USER", default=None, help="MQTT user name.")
@click.option("--broker-password", envvar="HIPSENSE_BROKER_PASSWORD", default=None,
              help="MQTT password (prefer the environment variable).")
@click.option("--broker-ca", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CA file: connect with TLS.")
@click.option("--client-id", default=None, help="MQTT client id (default: from the host name).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve the pages on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--timezone", default="UTC", show_default=True, callback=_check_timezone,
              help="The clinic's time zone (days, weeks), an IANA name such as Europe/Berlin.")
@click.option("--insecure-cookies", is_flag=True,
              help="Send the login cookie over plain HTTP (only behind a TLS proxy on the same host).")
def dashboard_serve(db_url, broker, broker_user, broker_password, broker_ca, client_id, host, port, timezone,
                    insecure_cookies) -> None:
    """Ingest results from the broker and serve the dashboard until interrupted."""
    import logging

    from hipsense.dashboard.serve import ServeOptions, serve

    broker_host, _, broker_port = (broker or "").partition(":")
    if broker_port and not broker_port.isdigit():
        raise click.BadParameter(f"{broker!r}: the port after ':' must be a number", param_hint="'--broker'")
    _open_database(db_url).dispose()  # a bad --db is a one-line error here, not a traceback in serve
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(ServeOptions(
        db_url=db_url, broker_host=broker_host or None, broker_port=int(broker_port or 1883),
        broker_username=broker_user, broker_password=broker_password, broker_ca_file=broker_ca,
        client_id=client_id, host=host, port=port, timezone=timezone, secure_cookies=not insecure_cookies,
    ))


@dashboard.command("dead-letters")
@_dashboard_db_option
@click.option("--patient", default=None, help="Only this patient's.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--payloads", is_flag=True, help="Print each payload too (it may hold health data).")
@click.option("--retry", is_flag=True,
              help="First store every dead-lettered result that passes validation now (e.g. once a wrong clock, "
                   "the Pi's or this server's, is right again); its Pi has forgotten it, this is its only copy.")
def dashboard_dead_letters(db_url, patient, limit, payloads, retry) -> None:
    """Messages ingest could not store, newest first, with the reason (the rest kept flowing)."""
    import datetime as dt

    from hipsense.dashboard.db import make_engine, migrate
    from hipsense.dashboard.event_store import EventStore
    from hipsense.dashboard.reading.dead_letters import count_dead_letters, latest_dead_letters

    engine = make_engine(db_url)
    migrate(engine)
    if retry:
        store = EventStore(engine)
        stored, refused = store.retry_dead_letters(dt.datetime.now(dt.timezone.utc), patient=patient)
        store.close()
        click.echo(f"retried: {stored} result(s) stored, {refused} dead letter(s) still refused")
    rows = latest_dead_letters(engine, limit, patient=patient)
    click.echo(f"{count_dead_letters(engine)} dead letter(s) in total; the newest {len(rows)}:")
    for row in rows:
        seq = "-" if row.seq is None else row.seq
        click.echo(f"{row.received_at:%Y-%m-%d %H:%M:%S}Z  {row.patient or '?'}  seq {seq}  {row.topic}\n"
                   f"    {row.reason}")
        if payloads:
            click.echo(f"    {row.payload[:2000]}")


@dashboard.command("import-outbox")
@_dashboard_db_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--patient", required=True,
              help="The patient whose Pi the file came from (only their results are taken).")
def dashboard_import_outbox(db_url, file, patient) -> None:
    """Store the results held in a Pi's outbox FILE set aside as corrupt (outbox.sqlite.corrupt-*),
    which the Pi can no longer send; each once, validated as ingest validates them."""
    from hipsense.dashboard.db import make_engine, migrate
    from hipsense.dashboard.event_store import EventStore
    from hipsense.dashboard.outbox_import import import_outbox_file
    from hipsense.protocol import validate_patient_id

    try:
        validate_patient_id(patient)
    except Exception as exc:
        raise click.BadParameter(str(exc), param_hint="--patient") from None
    engine = make_engine(db_url)
    migrate(engine)
    store = EventStore(engine)
    try:
        result = import_outbox_file(store, file, patient)
    finally:
        store.close()
    how = "read" if result.damaged_ranges is None else (
        f"read around the damage ({result.damaged_ranges} range(s) of rows on damaged pages not readable)")
    click.echo(f"{file}: {result.read} row(s) {how}; {result.stored} result(s) stored, {result.duplicates} "
               f"already stored, {len(result.refused)} refused")
    for reason in result.refused[:20]:
        click.echo(f"    refused: {reason}")


@dashboard.command("add-user")
@_dashboard_db_option
@click.argument("username")
@click.option("--name", "display_name", default=None, help="Name shown on the pages.")
@click.password_option(envvar="HIPSENSE_NEW_PASSWORD", help="At least 10 characters (prompted if not given).")
def dashboard_add_user(db_url, username, display_name, password) -> None:
    """Create a therapist account."""
    from hipsense.dashboard.accounts.therapists import AccountError, add_therapist

    engine = _open_database(db_url)
    try:
        therapist = add_therapist(engine, username, password, display_name)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added {therapist.username}")


@dashboard.command("assign-patient")
@_dashboard_db_option
@click.argument("patient_id")
@click.argument("username")
@click.option("--label", default=None, help="The therapist's own reminder (initials); never a full name.")
def dashboard_assign_patient(db_url, patient_id, username, label) -> None:
    """Let therapist USERNAME see (only they) the patient PATIENT_ID."""
    from hipsense.dashboard.accounts.therapists import AccountError, assign_patient
    from hipsense.protocol import ProtocolError

    engine = _open_database(db_url)
    try:
        assign_patient(engine, patient_id, username, label)
    except (AccountError, ProtocolError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{patient_id} -> {username}")
