"""Run the failure catalogue (tests/failure_catalogue_cases.py): exit status, message, nothing left behind.

For every case: the exit status is the expected one; the message fragment is in stderr; an exit 2 is one
``error:`` line without a traceback; no temporary file (``.NAME.XXXXXXXX.tmp``) is left anywhere in the
case's folder; a failed run leaves no output file, or the one that existed before, untouched; a run that
succeeds despite a warning wrote a complete run file (and, where the case says so, records what it
adjusted or derived). Signals run the CLI in a subprocess; the small-tmpfs case runs it in a user and
mount namespace (``unshare -r -m``) and is skipped where that is not allowed.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from failure_catalogue_cases import CASES, DOC, PREVIOUS, TABLE_END, TABLE_START, Case, doc_table, markdown
from typer.testing import CliRunner

from airshed.cli import app

ENV = {"COLUMNS": "400"}
ROOT = Path(__file__).resolve().parents[1]


def leftovers(folder: Path) -> list[Path]:
    """Temporary output files anywhere under ``folder``."""
    return sorted(p for p in folder.rglob(".*.tmp"))


def flat(text: str) -> str:
    """Stderr with wrapped log lines joined (rich wraps long messages)."""
    return re.sub(r"\s+", " ", text)


# --- monkeypatches named by cases ----------------------------------------------------------------------
def _little_free_space(monkeypatch):
    import airshed.preflight as preflight

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**4, 10**4))


def _enospc_on_write(monkeypatch):
    from airshed.outputs.netcdf import IncrementalNetCDF

    original = IncrementalNetCDF.write

    class Full:
        def __setitem__(self, key, value):
            raise OSError(errno.ENOSPC, "No space left on device")

    def write(self, name, first, values):
        real = self._nc

        class Proxy:
            def __getitem__(self, key):
                return Full()

            def isopen(self):
                return real.isopen()

            def close(self):
                real.close()

        self._nc = Proxy()
        original(self, name, first, values)

    monkeypatch.setattr(IncrementalNetCDF, "write", write)


def _enospc_on_finish(monkeypatch):
    original = xr.Dataset.to_netcdf

    def to_netcdf(self, *args, **kwargs):
        if kwargs.get("mode") == "a":
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", to_netcdf)


def _memory_two_thirds(monkeypatch):
    import airshed.preflight as preflight

    monkeypatch.setattr(preflight, "available_memory", lambda: 2 * 10**9)
    monkeypatch.setattr(
        preflight, "memory_estimate", lambda cfg, n: preflight.MemoryEstimate(0, 0.0, 0.0, 1.5e9)
    )


PATCHES = {
    "little_free_space": _little_free_space,
    "enospc_on_write": _enospc_on_write,
    "enospc_on_finish": _enospc_on_finish,
    "memory_two_thirds": _memory_two_thirds,
}


# --- runners ------------------------------------------------------------------------------------------
def _in_process(argv: list[str], folder: Path, env: dict[str, str]) -> tuple[int, str, str]:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(app, argv, env={**ENV, **env})
    finally:
        os.chdir(cwd)
    return result.exit_code, result.stdout, result.stderr


def _cli_command(argv: list[str]) -> list[str]:
    """The CLI in a fresh interpreter, with the signal dispositions of a process started from a shell.

    (A test run in the background inherits SIGINT/SIGHUP ignored; airshed respects an ignored signal.)
    """
    start = (
        "import signal\n"
        "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
        "signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from airshed.cli import app\n"
        "app()"
    )
    return [sys.executable, "-c", start, *argv]


def _subprocess_env() -> dict[str, str]:
    return {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _with_signal(case: Case, argv: list[str], folder: Path) -> tuple[int, str, str]:
    """Start the run, wait until its temporary file exists, then send the case's signal."""
    sig = {"sigterm": signal.SIGTERM, "sighup": signal.SIGHUP, "sigint": signal.SIGINT}[case.id]
    proc = subprocess.Popen(
        _cli_command(argv),
        cwd=folder,
        env=_subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 900
        while not leftovers(folder / "out"):
            if proc.poll() is not None or time.monotonic() > deadline:
                out, err = proc.communicate()
                pytest.fail(f"the run ended (status {proc.returncode}) before it wrote: {err[-2000:]}")
            time.sleep(0.2)
        time.sleep(1.0)  # now inside the hour loop, writing hours
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def _unshare_available() -> bool:
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    try:
        return (
            subprocess.run(["unshare", "-r", "-m", "true"], capture_output=True, timeout=30).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def _on_small_tmpfs(argv: list[str], folder: Path, size: str = "64k") -> tuple[int, str, str]:
    """Run the CLI with ``folder/out`` a tmpfs of ``size`` (a private mount namespace)."""
    if not _unshare_available():
        pytest.skip("unshare -r -m (user and mount namespaces) is not available here")
    # the tmpfs goes with the namespace, so the script itself reports what the run left in it
    script = (
        f'mount -t tmpfs -o size={size} tmpfs "$1" || exit 99\n'
        'cp "$2" "$1/cat.nc"; d="$1"; p="$2"; shift 2\n'
        '"$@"; status=$?\n'
        'echo "LEFT:$(ls -A "$d" | tr "\\n" ",")" >&2\n'
        '[ "$(cat "$d/cat.nc")" = "$(cat "$p")" ] && echo "PREVIOUS:intact" >&2\n'
        "exit $status\n"
    )
    previous = folder / "previous.nc"
    previous.write_bytes(PREVIOUS)
    command = [
        "unshare",
        "-r",
        "-m",
        "sh",
        "-c",
        script,
        "sh",
        str(folder / "out"),
        str(previous),
        *_cli_command(argv),
    ]
    proc = subprocess.run(
        command, cwd=folder, env=_subprocess_env(), capture_output=True, text=True, timeout=900
    )
    lines = proc.stderr.rstrip().splitlines()
    report = [line for line in lines if line.startswith(("LEFT:", "PREVIOUS:"))]
    assert report == ["LEFT:cat.nc,", "PREVIOUS:intact"], proc.stderr
    return proc.returncode, proc.stdout, "\n".join(line for line in lines if line not in report) + "\n"


# --- the catalogue ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_failure_catalogue(case: Case, tmp_path: Path, monkeypatch):
    invocation = case.build(tmp_path)
    output = tmp_path / invocation.output if invocation.output else None
    if invocation.previous and output is not None and case.runner != "subprocess":
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(PREVIOUS)
    if case.patch:
        PATCHES[case.patch](monkeypatch)
    if case.runner == "subprocess":
        code, out, err = _with_signal(case, invocation.argv, tmp_path)
    elif case.runner == "unshare":
        code, out, err = _on_small_tmpfs(invocation.argv, tmp_path)
    else:
        code, out, err = _in_process(invocation.argv, tmp_path, invocation.env)
    assert code == case.exit_code, f"exit {code}, expected {case.exit_code}\nstdout: {out}\nstderr: {err}"
    assert re.search(case.fragment, flat(err)), f"{case.fragment!r} not in stderr:\n{err}"
    assert "Traceback" not in err
    if case.exit_code != 0 and case.one_line:
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and err.strip().splitlines()[-1].startswith("error: "), err
    assert leftovers(tmp_path) == [], "temporary files left behind"
    if case.exit_code != 0 and output is not None and case.runner != "unshare":
        if invocation.previous:
            assert output.read_bytes() == PREVIOUS, "the previous output was changed"
        else:
            assert not output.exists(), f"{output} left behind by a failed command"
            figures = output.with_name(f"{output.stem}_figures")
            assert not figures.exists()
    if case.exit_code == 0 and "written" in case.checks:
        with xr.open_dataset(output) as ds:
            assert ds.attrs["run_file_format"] == 2
            assert np.isfinite(ds["concentration"].values).all()
            adjusted = json.loads(ds.attrs["met_adjustments"])
            derived = json.loads(ds.attrs["met_derived"])
        for check in case.checks:
            kind, _, what = check.partition(":")
            if kind == "adjusted":
                assert adjusted.get(what, 0) > 0, adjusted
            elif kind == "derived":
                assert what in derived, derived


def test_catalogue_has_at_least_70_distinct_cases():
    assert len(CASES) >= 70
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.exit_code for c in CASES} >= {0, 2, 129, 130, 143}


def test_docs_table_lists_the_catalogue():
    """docs/failure_catalogue.md holds the table generated from the cases (regenerate: see the file)."""
    text = DOC.read_text(encoding="utf-8")
    assert TABLE_START in text and TABLE_END in text
    assert doc_table(text) == markdown(), "run `python tests/failure_catalogue_cases.py --write-doc`"
    assert "docs/failure_catalogue.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_gitignore_matches_the_temporary_names(tmp_path):
    """The temporary names of atomic writes are ignored by git (checked with git itself)."""
    from airshed.atomic_files import temporary_beside

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tmp = temporary_beside(tmp_path / "jjj_winter.nc")
    name = f"examples/{tmp.name}"
    tmp.unlink()
    result = subprocess.run(["git", "check-ignore", "-q", "--no-index", name], cwd=ROOT)
    assert result.returncode == 0, f"{name} is not ignored by .gitignore"


def test_a_really_full_disk_while_writing_hours(tmp_path):
    """ENOSPC from HDF5 on a real 256 kB tmpfs: DiskFullError, no temporary file, the old file untouched."""
    if not _unshare_available():
        pytest.skip("unshare -r -m (user and mount namespaces) is not available here")
    script = tmp_path / "fill.py"
    script.write_text(
        """
import json, sys
from pathlib import Path
import numpy as np, xarray as xr
from airshed.atomic_files import DiskFullError
from airshed.outputs.netcdf import IncrementalNetCDF
folder = Path(sys.argv[1])
(folder / "run.nc").write_bytes(b"previous result")
skeleton = xr.Dataset(coords={"time": np.arange(400.0), "y": np.arange(50.0), "x": np.arange(50.0)})
hourly = {"field": (("time", "y", "x"), {"units": "1"})}
rng = np.random.default_rng(0)
outcome = "finished"
try:
    with IncrementalNetCDF(folder / "run.nc", skeleton, hourly, compression_level=0, time_chunk=1) as out:
        for hour in range(400):  # 400 x 20 kB of noise: more than the file system holds
            out.write("field", hour, rng.random((1, 50, 50)))
        out.finish(xr.Dataset())
except DiskFullError as exc:
    outcome = str(exc)
print(json.dumps({"outcome": outcome, "left": sorted(p.name for p in folder.iterdir()),
                  "previous": (folder / "run.nc").read_bytes().decode()}))
""",
        encoding="utf-8",
    )
    box = tmp_path / "box"
    box.mkdir()
    command = [
        "unshare",
        "-r",
        "-m",
        "sh",
        "-c",
        'mount -t tmpfs -o size=256k tmpfs "$1" && shift && exec "$@"',
        "sh",
        str(box),
        sys.executable,
        str(script),
        str(box),
    ]
    proc = subprocess.run(command, env=_subprocess_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"].startswith("no space left on the device of"), result
    assert "it needs about 8 MB" in result["outcome"], result
    assert result["left"] == ["run.nc"] and result["previous"] == "previous result"
