"""Build hook: ship the top-level ``mappings/``, ``layouts/``, ``templates/`` and ``samples/``.

They stay at the repository root for people who edit them; a wheel carries a copy in the package
folder ``edigw/_shipped/`` (see ``edigw/shipped.py``). Everything else is in ``pyproject.toml``.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("mappings", "layouts", "templates", "samples")
SKIPPED = {"__pycache__", "tools"}  # samples/tools holds the authors' sample generators


class BuildWithShippedFiles(build_py):
    """``build_py`` that also copies the shipped folders into ``edigw/_shipped/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        root = Path(__file__).resolve().parent
        for name in SHIPPED:
            for source in sorted((root / name).rglob("*")):
                relative = source.relative_to(root)
                if not source.is_file() or SKIPPED & set(relative.parts):
                    continue
                target = Path(self.build_lib) / "edigw" / "_shipped" / relative
                self.mkpath(str(target.parent))
                self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithShippedFiles})
