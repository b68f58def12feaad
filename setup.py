"""The wheel carries the kit's files: the stacks, the image recipes, the app seed and the lessons.

They live at the top of the checkout (``compose/``, ``notebooks/``), where an instructor edits
them. A wheel has no top of a checkout, so the build copies them into the package as
``labkit/_kit/``; ``labkit.paths`` finds them there with importlib.resources. An editable
install reads the checkout itself, and gets no copy.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# Made at run time, or by a build: never shipped.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".secrets", ".gitignore", "rootfs.tar")


class BuildWithKit(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        kit = Path(self.build_lib) / "labkit" / "_kit"
        shutil.rmtree(kit, ignore_errors=True)
        shutil.copytree(HERE / "compose", kit / "compose", ignore=IGNORED, symlinks=True)
        (kit / "notebooks").mkdir(parents=True)
        for lesson in sorted((HERE / "notebooks").glob("[0-9][0-9]-*.ipynb")):
            shutil.copy2(lesson, kit / "notebooks" / lesson.name)


setup(cmdclass={"build_py": BuildWithKit})
