"""The shipped mappings, layouts, templates and samples: found in a checkout and in a wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edigw.errors import ConfigError
from edigw.shipped import SHIPPED_FOLDERS, shipped_folder, shipped_root

ROOT = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "edigw", *SHIPPED_FOLDERS)


def test_a_checkout_uses_the_folders_at_the_repository_root() -> None:
    assert shipped_root() == ROOT
    assert shipped_folder("mappings") == ROOT / "mappings"


def test_an_installed_package_uses_its_shipped_copy(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "edigw"
    (package / "_shipped" / "mappings").mkdir(parents=True)

    assert shipped_root(package=package) == package / "_shipped"
    assert shipped_folder("mappings", package=package) == package / "_shipped" / "mappings"
    assert shipped_folder("layouts", package=package) is None


def test_a_package_without_shipped_files_says_so(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "edigw"
    package.mkdir(parents=True)

    with pytest.raises(ConfigError, match="the shipped mappings and samples are missing"):
        shipped_root(package=package)


@pytest.mark.slow
def test_the_wheel_carries_every_shipped_file(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)

    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    result = subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    (wheel,) = (tmp_path / "dist").glob("edigw-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {
        "edigw/_shipped/" + p.relative_to(ROOT).as_posix()
        for folder in SHIPPED_FOLDERS
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and "tools" not in p.parts
    }
    assert "edigw/_shipped/samples/sandbox-seed.json" in expected
    assert expected <= names, sorted(expected - names)
    assert "edigw/shipped.py" in names
    assert not [n for n in names if n.startswith("edigw/_shipped/samples/tools/")]
