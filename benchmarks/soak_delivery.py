"""Soak the delivery path under chaos for minutes and print figures (tests/deploy/chaos.py).

The default suite runs the same chaos for ~12 s per database (tests/deploy/test_chaos_delivery.py);
this runs it for longer, over several seeds, against the shipped broker config and a fresh
database (SQLite with one dashboard instance, PostgreSQL with two):

    python benchmarks/soak_delivery.py --seconds 120 --runs 3 [--database sqlite|postgresql|both]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--seed N] [--service]

``--service``: patient A's Pi is ``hipsense run`` itself (the emulated sensor looping the shipped
UCI session at 20x), SIGKILLed at random moments (mid-set, mid-hold, mid-publish); at the end it
is stopped with SIGTERM (the session summary) and every set must count the reps stored for it.

Per run it prints the seed, results produced and stored, the blows dealt (Pi kills from outside
and at crash points, dashboard kills, broker restarts and losses, clock steps), the checks
after every Pi death and their violations, how long delivery took to finish after the chaos,
and the verdict per patient. Exit status 1 if any run lost, duplicated or stranded a result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hipsense.dashboard.db import make_engine, migrate  # noqa: E402
from tests.deploy.chaos import BAD_OUTCOMES, Chaos  # noqa: E402
from tests.deploy.conftest import start_deployment  # noqa: E402
from tests.pki import make_pki  # noqa: E402


@contextlib.contextmanager
def database(kind: str, workdir: Path, pg_admin: str):
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'dashboard.sqlite3'}"
        engine = make_engine(str(workdir / "dashboard.sqlite3"))
        migrate(engine)
        engine.dispose()
        yield url
        return
    import psycopg

    name = f"hipsense_soak_{secrets.token_hex(4)}"
    with psycopg.connect(pg_admin, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = pg_admin.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(pg_admin, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="Work in this directory and keep it (logs).")
    parser.add_argument("--service", action="store_true",
                        help="Patient A's Pi is `hipsense run` itself (emulated sensor looping a real session at "
                             "20x), SIGKILLed at random; its sets must count the reps stored for them.")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    failed = False
    for run in range(args.runs):
        for kind in kinds:
            seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
            with tempfile.TemporaryDirectory(prefix="hipsense-soak-") as tmp:
                workdir = Path(tmp) if args.keep is None else args.keep / f"run{run + 1}-{kind}"
                workdir.mkdir(parents=True, exist_ok=True)
                pki = make_pki(workdir / "pki")
                deployment = start_deployment(workdir / "deploy", pki)
                try:
                    with database(kind, workdir, args.pg) as url:
                        chaos = Chaos(deployment, workdir, url, instances=2 if kind == "postgresql" else 1, seed=seed,
                                      service=args.service)
                        figures = chaos.run(args.seconds, settle_timeout=120.0)
                        verdict = chaos.verdict()
                        chaos.dispose()
                finally:
                    deployment.broker.stop()
            bad = figures.violations or any(v[key] for v in verdict.values() for key in BAD_OUTCOMES)
            failed |= bool(bad)
            print(f"run {run + 1} {figures.summary()}")
            print(f"  verdict: {json.dumps(verdict)}")
            for violation in figures.violations:
                print(f"  VIOLATION: {violation}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
