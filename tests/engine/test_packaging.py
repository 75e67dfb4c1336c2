"""The wheel ships every Lua script, and the loader finds them in an installed copy."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
LUA_DIR = REPOSITORY / "lua"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(outdir),
            str(REPOSITORY),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (built,) = outdir.glob("djust_dist-*.whl")
    return built


def test_wheel_contains_lua_scripts(wheel: Path) -> None:
    scripts = sorted(path.name for path in LUA_DIR.glob("*.lua"))

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())

    assert scripts
    for name in scripts:
        assert f"djust_dist/lua/{name}" in names


def test_installed_copy_loads_packaged_scripts(wheel: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path)
    probe = (
        "import djust_dist.engine.scripts as scripts, importlib.resources as res;"
        "print(res.files('djust_dist'));"
        "print(scripts.get_script('consume').source == "
        "res.files('djust_dist').joinpath('lua', 'consume.lua').read_text())"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    package_dir, same_source = result.stdout.split()
    assert package_dir.startswith(str(tmp_path))
    assert same_source == "True"
