"""Real `main.py` processes for tests: the CLI, `serve` on a free port, `worker`.

Every process gets a clean environment (no PINHOLE_* from the caller's shell except those a test
passes), runs in its own session so the whole group (Granian's main process and its workers) can be
signalled at once, and writes its output to files (a full pipe would block it). The `procs`
fixture kills every group it started when the test ends, pass or fail.

Waits poll against a deadline; nothing sleeps for a fixed long time.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "main.py"
PYTHON = sys.executable
START_TIMEOUT = 20.0


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any PINHOLE_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINHOLE_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(
    *args: str | os.PathLike,
    config: str | os.PathLike | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`python main.py ARGS [--config CONFIG]`, run to completion. The working directory defaults to
    the config's folder (never the checkout, whose ./config.toml must not be picked up by accident)."""
    argv = [PYTHON, str(MAIN), *map(str, args)]
    if config is not None:
        argv += ["--config", str(config)]
    if cwd is None:
        cwd = Path(config).parent if config is not None else Path("/")
    return subprocess.run(
        argv,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=clean_env(env),
        cwd=cwd,
        timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess[str] | str) -> str:
    """The single stderr line of a refused command (asserting there is exactly one, no traceback);
    `result` is a finished run or its stderr."""
    stderr = result if isinstance(result, str) else result.stderr
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


@dataclass
class Proc:
    """A started `main.py serve|worker`; its group is killed by the `procs` fixture at teardown."""

    popen: subprocess.Popen
    name: str
    stdout_path: Path
    stderr_path: Path
    port: int | None = None
    _files: list = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        return (
            f"{self.name} (exit {self.popen.poll()})\n"
            f"--- stdout\n{self.stdout()[-3000:]}\n--- stderr\n{self.stderr()[-3000:]}"
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def group_alive(self) -> bool:
        """Whether any process of the group (the server's own workers included) still runs."""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        # A zombie leader we have not reaped still counts; reap it and ask again.
        if self.popen.poll() is not None:
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                return False
        return True

    def send(self, sig: int) -> None:
        """Signal the main process only, as an operator's `kill PID` would."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def wait_group_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.group_alive():
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.kill_group(signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for f in self._files:
            f.close()


class Procs:
    """Starts processes for one test and remembers them for the teardown."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[Proc] = []

    def start(
        self,
        name: str,
        *args: str | os.PathLike,
        config: str | os.PathLike,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        n = len(self.started)
        out_path = self.log_dir / f"{n}-{name}.out"
        err_path = self.log_dir / f"{n}-{name}.err"
        out, err = out_path.open("wb"), err_path.open("wb")
        popen = subprocess.Popen(
            [PYTHON, str(MAIN), *map(str, args), "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=clean_env(env),
            cwd=Path(config).parent,
            start_new_session=True,
        )
        proc = Proc(popen, name, out_path, err_path, port, [out, err])
        self.started.append(proc)
        return proc

    def serve(
        self,
        config: str | os.PathLike,
        port: int | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Proc:
        """`main.py serve` on a free port; by default, returns once /healthz answers 200."""
        port = port or free_port()
        proc = self.start("serve", "serve", "--port", str(port), config=config, env=env, port=port)
        if wait:
            wait_healthy(proc)
        return proc

    def worker(self, config: str | os.PathLike, threads: int = 2, env: dict[str, str] | None = None) -> Proc:
        proc = self.start("worker", "worker", "--threads", str(threads), config=config, env=env)
        wait_for(lambda: "Pinhole worker:" in proc.stdout() or not proc.alive(), START_TIMEOUT, "worker start")
        assert proc.alive(), proc.describe()
        return proc

    def close(self) -> None:
        for proc in self.started:
            proc.close()


@pytest.fixture
def procs(tmp_path) -> Iterator[Procs]:
    started = Procs(tmp_path / "logs")
    try:
        yield started
    finally:
        started.close()


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_healthy(proc: Proc, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"server exited before it was healthy: {proc.describe()}")
        try:
            if httpx.get(f"{proc.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"server not healthy within {timeout:.0f}s: {proc.describe()}")


# --- Driving a running server over HTTP, as a browser would ---

CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')


def form_token(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, f"GET {path}: {page.status_code}"
    match = CSRF_FIELD.search(page.text)
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def http_sign_up(base_url: str, username: str, password: str, timeout: float = 10, **extra: str) -> httpx.Client:
    """Sign up through the pages; returns the signed-in client. Raises on anything but a 303."""
    client = httpx.Client(base_url=base_url, timeout=timeout)
    try:
        token = form_token(client, "/signup")
        r = client.post("/signup", data={"username": username, "password": password, "_csrf_token": token, **extra})
        if r.status_code != 303:
            raise AssertionError(f"sign-up of {username}: {r.status_code} {r.text[:500]}")
    except BaseException:
        client.close()
        raise
    return client


def http_log_in(base_url: str, username: str, password: str) -> int:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        token = form_token(client, "/login")
        r = client.post("/login", data={"username": username, "password": password, "_csrf_token": token})
        return r.status_code


class SignupStream:
    """A thread that keeps signing up users (`prefix0`, `prefix1`, ...) until stopped, recording the
    moment each sign-up was acknowledged with its 303. Failures after the server went away are
    expected by crash tests and are kept, not raised."""

    def __init__(self, base_url: str, password: str, prefix: str = "u", limit: int = 10_000):
        self.base_url = base_url
        self.password = password
        self.prefix = prefix
        self.limit = limit
        self.acked: list[tuple[str, float]] = []  # (username, monotonic time of the 303)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"signups-{prefix}", daemon=True)

    def __enter__(self) -> SignupStream:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        for n in range(self.limit):
            if self._stop.is_set():
                return
            name = f"{self.prefix}{n}"
            try:
                http_sign_up(self.base_url, name, self.password, timeout=10).close()
            except (httpx.HTTPError, AssertionError) as exc:
                self.errors.append(f"{name}: {exc}")
                if len(self.errors) >= 3:
                    return
                time.sleep(0.05)
                continue
            self.acked.append((name, time.monotonic()))

    def wait_acked(self, count: int, timeout: float = 30) -> None:
        wait_for(lambda: len(self.acked) >= count or not self._thread.is_alive(), timeout, f"{count} sign-ups")
        assert len(self.acked) >= count, f"only {len(self.acked)} sign-ups acknowledged; errors: {self.errors}"

    def stop(self, timeout: float = 20) -> None:
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the sign-up thread did not stop"

    def acked_before(self, moment: float) -> list[str]:
        return [name for name, at in self.acked if at < moment]
