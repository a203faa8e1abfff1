"""One long-lived Spark application per master for the tests that need another master than
the suite's in-process `local[2]` (separate executor processes, one core).

Each application is a Python process of its own (one SparkContext per process) holding a
session on its master; it runs `curate` jobs on request through the same `execute` as the
CLI, which uses the active session. So the tests of a master pay its driver JVM, its
executor JVMs and their Python workers (pandas, torch, open_clip imports) once, not once
per test: a `curate ... --master local-cluster[2,1,1024]` subprocess costs 15-25 s of a
2-core machine before its first task.

    def test_x(cluster_app, tmp_path):            # fixture: local-cluster[2,1,1024]
        res = cluster_app.curate("cls", "--captions", c, "--out", o)
        assert res.returncode == 0, res.output

The application's working directory is `app.cwd` (its own, for driver JVM and Python
alike): relative paths in a request resolve there, as a user's do in the directory they
run `curate` from; a test puts its files under a folder of its own there (`app.folder`).

Run as a script, this file is the application: `python spark_app.py MASTER LOG` reads one
JSON request per line on stdin (`{"argv": [...]}`), answers one JSON line
(`{"rc", "stdout", "stderr"}`) on the file descriptor that was its stdout; the JVM's own
output and anything else written to file descriptors 1 and 2 goes to LOG.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from typing import Optional

#: the repository root (this file is tests/support/spark_app.py)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Result:
    """What a request gave: the job's exit code and its Python-level stdout/stderr."""

    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr)[-5000:]


class SparkApp:
    """The client side: start the application, send it jobs, stop it."""

    def __init__(self, master: str, log: str, cwd: str, env: Optional[dict] = None):
        self.master, self.log, self.cwd = master, log, cwd
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), master, log],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=cwd,
                                     env=env, text=True)
        self._folders = 0
        self.pending = 0  # requests sent, not yet received (answers come in order)

    def folder(self) -> str:
        """A new folder under the application's working directory (its name, relative)."""
        self._folders += 1
        name = f"t{self._folders}"
        os.makedirs(os.path.join(self.cwd, name))
        return name

    def curate(self, *argv: str, timeout: float = 600) -> Result:
        """`curate ARGV` (job name words first, as on the command line) in the application."""
        if self.pending:
            raise RuntimeError(f"the {self.master} application still owes {self.pending} answer(s)")
        self.send(*argv)
        return self.receive(timeout)

    def send(self, *argv: str) -> None:
        """Start `curate ARGV` and return at once (`receive` waits for it): runs in two
        applications at once overlap their waits."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"the {self.master} application has exited:\n{self._log_tail()}")
        self.proc.stdin.write(json.dumps({"argv": list(argv)}) + "\n")
        self.proc.stdin.flush()
        self.pending += 1

    def receive(self, timeout: float = 600) -> Result:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError(f"no answer from the {self.master} application within {timeout}s:\n"
                               f"{self._log_tail()}")
        self.pending -= 1
        answer = json.loads(line)
        return Result(answer["rc"], answer["stdout"], answer["stderr"])

    def _log_tail(self, n: int = 40) -> str:
        try:
            with open(self.log, errors="replace") as fh:
                return "".join(fh.readlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _serve(master: str, log: str) -> None:
    import contextlib
    import io
    import traceback

    answers = os.fdopen(os.dup(1), "w")
    with open(log, "ab") as fh:  # everything else on fds 1 and 2 (JVM, workers) into the log
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)

    from jobs.framework.base import execute
    from jobs.framework.cli import discover
    from jobs.framework.session import create_session

    spark = create_session(master, app_name=f"longtail-curation-tests {master}",
                           conf={"spark.sql.shuffle.partitions": "4"})
    registry = discover()
    for line in sys.stdin:
        request = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        try:
            argv = request["argv"]
            key = next((k for k in sorted(registry, key=len, reverse=True) if tuple(argv[:len(k)]) == k), None)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                if key is None:
                    print(f"no job {argv[:2]}", file=sys.stderr)
                    rc = 2
                else:
                    rc = execute(registry[key], argv[len(key):], prog=f"curate {' '.join(key)}")
        except SystemExit as e:  # argparse: --help, a usage error
            rc = e.code if isinstance(e.code, int) else 1
        except Exception:  # a job's crash: reported with its traceback, the application keeps serving
            err.write(traceback.format_exc())
            rc = 1
        answers.write(json.dumps({"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}) + "\n")
        answers.flush()
    spark.stop()


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    _serve(sys.argv[1], sys.argv[2])
