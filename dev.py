"""Set up a development environment and run cuecraft's jobs, with nothing but Python 3.

    python3 dev.py demo    # create .venv, install, run the main job on the built-in default
    python3 dev.py test    # create .venv, install, run the whole test suite
    python3 dev.py bench   # create .venv, install, run the benchmarks under bench/

The virtual environment is created once and re-installed only when pyproject.toml changes.
torch==2.13.0 is installed before the package so that pip never pulls another torch build.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".cuecraft-installed"
TORCH = "torch==2.13.0"
# The corpus's soundfont renderer, without its pyaudio dependency (live playback only; it does not build).
SOUNDFONT = "tinysoundfont==0.3.7"


def _run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def ensure_env() -> None:
    """Create .venv and install torch, then cuecraft with its dev extra, when needed."""
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if STAMP.exists() and STAMP.stat().st_mtime >= pyproject.stat().st_mtime:
        return
    _run(PYTHON, "-m", "pip", "install", "--quiet", TORCH)
    _run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", SOUNDFONT)
    STAMP.touch()


def main(argv: list[str]) -> int:
    benches = sorted(p.relative_to(ROOT) for p in (ROOT / "bench").glob("[!_]*.py"))
    jobs = {
        "demo": [[PYTHON, "-m", "cuecraft", "generate", "--measure", "--out", "generated.wav"]],
        "test": [[PYTHON, "-m", "pytest", "-q"]],
        "bench": [[PYTHON, bench] for bench in benches],
    }
    if len(argv) < 1 or argv[0] not in jobs:
        print(f"usage: python3 dev.py {{{'|'.join(jobs)}}} [extra arguments]", file=sys.stderr)
        return 2
    ensure_env()
    # librosa compiles with numba on first use (minutes in a fresh environment): keep the result.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(VENV / "numba-cache"))
    for command in jobs[argv[0]]:
        command = command + argv[1:]
        print("+", " ".join(str(a) for a in command), flush=True)
        code = subprocess.run([str(a) for a in command], cwd=ROOT).returncode
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
