"""Print one optional-dependency group of pyproject.toml, one requirement a line (for pip -r in images).

    python docker/requirements.py serve > requirements.txt

pyproject.toml is looked for beside this file, then one folder up (the repository layout).
"""

import sys
import tomllib
from pathlib import Path

here = Path(__file__).resolve().parent
pyproject = next(path for path in (here / "pyproject.toml", here.parent / "pyproject.toml") if path.exists())
groups = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
print("\n".join(groups[sys.argv[1]]))
