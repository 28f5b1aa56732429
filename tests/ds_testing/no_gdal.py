"""Run Python code in a subprocess where GDAL (`osgeo`) cannot be imported, as on the lent GPU machine."""
from __future__ import annotations

import subprocess
import sys
from typing import Sequence

# A finder ahead of every other that refuses osgeo and its submodules; the code after it runs as usual.
PRELUDE = """\
import sys
class _NoGdal:
    def find_spec(self, name, path=None, target=None):
        if name == "osgeo" or name.startswith("osgeo."):
            raise ImportError("osgeo is blocked: this code must run without GDAL")
        return None
sys.meta_path.insert(0, _NoGdal())
"""


def run_without_gdal(code: str, args: Sequence[str] = (), timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -c PRELUDE + code args...` with this process's sys.path; stdout and stderr captured as text."""
    env = {"PYTHONPATH": ":".join(p for p in sys.path if p), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", PRELUDE + code, *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def script_without_gdal(script: str, args: Sequence[str] = (),
                        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A script file run as __main__ after the prelude (runpy), with `args` as its sys.argv[1:]."""
    code = f"import runpy\nsys.argv = [{script!r}] + sys.argv[1:]\nrunpy.run_path({script!r}, run_name='__main__')\n"
    return run_without_gdal(code, args, timeout)
