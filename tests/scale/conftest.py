"""A throwaway PostgreSQL server on loopback for the shared-study tests.

Started from the Debian package's binaries in a temporary data directory and
stopped at the end of the session. In CI (``CI=true``) a server that cannot start
fails the tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Stops the server once pytest is gone, however it went (timeout, SIGKILL): a daemonised
# postmaster is adopted by init and would otherwise outlive a killed test run.
_WATCHDOG = """
import os, select, shutil, subprocess, sys
parent, base, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
try:
    select.select([os.pidfd_open(parent)], [], [])
except ProcessLookupError:
    pass
subprocess.run(stop, capture_output=True)
shutil.rmtree(base, ignore_errors=True)
"""


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_url():
    if os.environ.get("FDT_TEST_POSTGRES_URL"):
        yield os.environ["FDT_TEST_POSTGRES_URL"]
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        _unavailable("initdb/pg_ctl not found (Debian: apt-get install postgresql)")
    # outside pytest's private (0700) temp root: the server runs as another user
    base = Path(tempfile.mkdtemp(prefix="fdt-postgres-"))
    data = base / "data"
    data.mkdir()
    # PostgreSQL refuses to run as root: run it as the package's postgres user
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        os.chmod(base, 0o755)
        shutil.chown(data, "postgres")
    port = _free_port()
    log = base / "postgres.log"
    stop = [*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(base), *stop], start_new_session=True)
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
        if as_user:
            log.touch()
            shutil.chown(log, "postgres")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data}"
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"], check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError, LookupError) as error:
        detail = getattr(error, "stderr", b"") or b""
        watchdog.kill()
        watchdog.wait()
        shutil.rmtree(base, ignore_errors=True)
        _unavailable(f"could not start a server: {error} {detail.decode(errors='replace')[-300:]}")
    try:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE fdt")
        connection.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/fdt"
    finally:
        watchdog.kill()
        watchdog.wait()
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
