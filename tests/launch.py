"""Run a training script under ``accelerate launch`` with two CPU processes (gloo DDP)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_two_processes(script: Path) -> subprocess.CompletedProcess:
    """``script`` under ``accelerate launch`` with 2 processes; the finished process (check ``returncode``).

    accelerate 1.x starts a single process for ``--cpu --num_processes 2`` (its simple launcher
    only fans out through mpirun); ``--multi_gpu`` uses torchrun, and on a machine without GPUs
    the trainer runs gloo DDP on the CPU.
    """
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), str(script),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
