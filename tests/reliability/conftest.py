"""A throwaway PostgreSQL cluster and Redis of the tests' own, which the fault tests stop, kill and restart.

The shared servers (54329, 63799) are never touched: these run on free ports, in a temporary directory, and are
removed at the end of the session. The schema comes from the test database pytest-django migrated (pg_dump piped
into pg_restore: seconds, where migrating again would take much longer)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
ARTIFACTS = REPO_ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_postgres(*command: str | Path, **kwargs: Any) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: as root, run its tools as the postgres system user."""
    argv = [str(part) for part in command]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout} s")


@dataclass
class Postgres:
    directory: Path
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgis://auman@127.0.0.1:{self.port}/auman"

    def pg_ctl(self, *args: str) -> None:
        as_postgres(PG_BIN / "pg_ctl", "-D", self.data, *args, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("-l", str(self.directory / "server.log"), "-w", "-t", "60", "-o", options, "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="auman", dbname="auman", autocommit=True)

    def scalar(self, sql: str, params: tuple = ()) -> Any:
        with self.connect() as conn:
            row = conn.execute(sql, params or None).fetchone()
            return row[0] if row else None


@dataclass
class Redis:
    directory: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # No persistence: a restart loses every queued message, the worst case the outbox must survive.
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self.answers(), timeout=10, what="Redis start")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@dataclass
class Stack:
    """Our own PostgreSQL and Redis, and the web and worker processes that run against them."""

    postgres: Postgres
    redis: Redis
    tokens: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    web_port: int = 0
    worker: subprocess.Popen | None = None

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "auman.settings_test",
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis.url,
            "AUMAN_TEST_REDIS_URL": self.redis.url,
            # Pending outbox messages go out within a second of the broker's return.
            "AUMAN_OUTBOX_RELAY_SECONDS": "1",
            # A killed worker's task comes back after 5 s, not 15 min, so the test waits seconds.
            "AUMAN_BROKER_VISIBILITY_TIMEOUT": "5",
            **extra,
        }

    def start_worker(self, name: str) -> subprocess.Popen:
        log = open(ARTIFACTS / f"reliability-{name}.log", "w")  # noqa: SIM115 - the process owns it
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "auman",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"{name}-{os.getpid()}@%h",
            ],
            cwd=REPO_ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(worker)
        wait_for(lambda: "ready." in self.log(name), timeout=60, what=f"worker {name} start")
        return worker

    def wait_idle(self, name: str, *, timeout: float = 60) -> None:
        """Until every task the worker received has ended (succeeded, failed or gone to retry)."""

        def idle() -> bool:
            text = self.log(name)
            ended = sum(text.count(word) for word in ("] succeeded in", "] raised unexpected", "] retry:"))
            return text.count("] received") <= ended

        wait_for(idle, timeout=timeout, what=f"worker {name} to be idle")

    def log(self, name: str) -> str:
        path = ARTIFACTS / f"reliability-{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_web(self) -> subprocess.Popen:
        self.web_port = free_port()
        log = open(ARTIFACTS / "reliability-web.log", "w")  # noqa: SIM115 - the process owns it
        web = subprocess.Popen(
            [str(REPO_ROOT / ".venv/bin/gunicorn"), "auman.wsgi", "-b", f"127.0.0.1:{self.web_port}", "-w", "1"],
            cwd=REPO_ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(web)
        wait_for(lambda: self.request("GET", "/healthz")[0] in (200, 503), timeout=60, what="web start")
        return web

    def request(self, method: str, path: str, body: Any = None, user: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if user is not None:
            headers["Authorization"] = f"Token {self.tokens[user]}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")
        except OSError:
            return 0, None

    def stop_processes(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


def _copy_schema(postgres: Postgres, source: dict[str, Any]) -> None:
    dump = subprocess.run(
        [
            "pg_dump",
            "-Fc",
            "-h",
            source["HOST"],
            "-p",
            str(source["PORT"]),
            "-U",
            source["USER"],
            # The test database pytest-django migrated (settings_dict may still name the dev database here).
            source["TEST"]["NAME"] or f"test_{source['NAME']}",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PGPASSWORD": source.get("PASSWORD") or ""},
    )
    restore = subprocess.run(
        ["pg_restore", "--no-owner", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "auman", "-d", "auman"],
        input=dump.stdout,
        capture_output=True,
    )
    assert restore.returncode == 0, restore.stderr.decode(errors="replace")


_USERS = """
import json
from accounts.models import Organisation, Role, User
from rest_framework.authtoken.models import Token
orgs = {
    "alice": Organisation.objects.create(name="Stadtwerke", kind=Organisation.Kind.UTILITY),
    "erin": Organisation.objects.create(name="Telekom Bau", kind=Organisation.Kind.CONTRACTOR),
}
tokens = {}
for name, org in orgs.items():
    user = User.objects.create_user(name, organisation=org, role=Role.APPLICANT)
    tokens[name] = Token.objects.create(user=user).key
print("TOKENS=" + json.dumps(tokens))
"""


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker) -> Stack:
    """Our own PostgreSQL cluster and Redis (started once per session), with two applicants and their tokens."""
    from django.db import connection

    ARTIFACTS.mkdir(exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="auman-reliability-"))
    directory.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    postgres = Postgres(directory=directory, port=free_port())
    as_postgres(PG_BIN / "initdb", "-D", postgres.data, "-U", "auman", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
    postgres.start()
    redis_dir = directory / "redis"
    redis_dir.mkdir()
    redis = Redis(directory=redis_dir, port=free_port())
    stack = Stack(postgres=postgres, redis=redis, tokens={})
    try:
        as_postgres(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "auman", "auman")
        with django_db_blocker.unblock():
            _copy_schema(postgres, connection.settings_dict)
        redis.start()
        made = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", _USERS],
            cwd=REPO_ROOT,
            env=stack.env(),
            check=True,
            capture_output=True,
            text=True,
        )
        line = next(x for x in made.stdout.splitlines() if x.startswith("TOKENS="))
        stack.tokens = json.loads(line.removeprefix("TOKENS="))
        yield stack
    finally:
        stack.stop_processes()
        redis.stop()
        with contextlib.suppress(subprocess.CalledProcessError):
            postgres.stop()
        shutil.rmtree(directory, ignore_errors=True)
