"""InferGuard installed from its wheel, for the whole-command rows: what a user who ran
`pip install inferguard` starts, not the developer's editable install.

Why: the editable install (`pip install -e .`) puts a finder in a `.pth` file that every
interpreter in that venv imports at start-up (~11 ms here: pathlib, re, fnmatch, urllib...).
`python -c pass` pays it too, and most of those modules InferGuard imports anyway, so a
ratio to `python -c pass` measured there flatters InferGuard's start-up (2.6x in the dev venv
was 5.3x for a wheel user). Here: the wheel is built from the working tree, installed with
`--no-deps` into a fresh venv without pip, and that venv sees the dev venv's dependencies
through a plain path line in a `.pth` (a path line adds a directory to sys.path; it does not
run that directory's `.pth` files, so the editable finder stays out). Both sides of a row
run that venv's interpreter. The wheel is built from a copy of the working tree's files
(tracked and untracked-unignored), so no build output lands in the checkout: a `build/`
holding the C core would otherwise be packed into a later wheel built without a compiler.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _source_copy(dest: Path) -> Path:
    """The files git would commit from this working tree, copied under `dest`."""
    names = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src = REPO / name
        if src.is_file():  # a tracked file deleted in the working tree is left out
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def install_wheel(where: Path) -> tuple[str, str]:
    """Build and install the wheel under `where`; return (python, inferguard script)."""
    wheels, venv = where / "wheel", where / "venv"
    source = _source_copy(where / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(source)], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    wheel = [str(p) for p in wheels.glob("inferguard-*.whl")]
    assert len(wheel) == 1, wheel
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
                    "--no-deps", "--no-index", *wheel], check=True)
    probe = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([python, "-c", probe], check=True, capture_output=True,
                          text=True).stdout.strip()
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(site) / "zz_inferguard_bench_deps.pth").write_text("".join(f"{d}\n" for d in deps))
    return python, str(venv / "bin" / "inferguard")
