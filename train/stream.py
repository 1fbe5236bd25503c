"""Run a trainer as a child process: its output streamed to ours as it comes, its exit code returned.

Trainers (LLaMA-Factory, verl) are programs with their own environments and logs; minio3 hands off to them
and stays out of the way: progress bars (with \\r) pass through untouched, and Ctrl-C is passed on, so the
trainer can save or clean up, before it is killed after a grace period.
"""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import sys

from minio3_data.errors import BadInputError

INTERRUPT_GRACE_S = 30


def _pump(proc: subprocess.Popen[bytes]) -> None:
    """Copy the child's output to our stdout as it comes (progress bars with \\r included)."""
    assert proc.stdout is not None
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    fd = proc.stdout.fileno()
    while chunk := os.read(fd, 65536):
        sys.stdout.write(decoder.decode(chunk))
        sys.stdout.flush()


def run_streaming(argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> int:
    """Run `argv` with `env` laid over ours, stream its output, and return its exit code (Ctrl-C is passed
    on to it). A program that cannot be started is a one-line BadInputError."""
    try:
        proc = subprocess.Popen(
            argv, env={**os.environ, **(env or {})}, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    except OSError as e:
        raise BadInputError(f"{argv[0]}: cannot run ({e.strerror})") from None
    try:
        _pump(proc)
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(INTERRUPT_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
