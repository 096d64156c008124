"""Print the declared floors of pyproject.toml as exact pins, one ``name==floor`` a line.

    python tools/floor_requirements.py [NAME ...] > floors.txt

Every runtime dependency (``[project] dependencies``) is pinned to its ``>=`` floor,
and so is each NAME, taken from the ``dev`` extra (the test tools a job needs).
A requirement without a ``>=`` floor, or a NAME the ``dev`` extra does not list,
stops the script: the pins are read from pyproject.toml on every run, so they
cannot drift from what it declares. ``pip install -r floors.txt`` then installs
exactly the floors, or fails; it never quietly installs something newer.
"""

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)\s*>=\s*([0-9][0-9A-Za-z.+!\-]*)\s*$")


def normalised(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pin(requirement):
    """``"numpy>=1.26"`` -> ``"numpy==1.26"``; anything but a single floor raises ValueError."""
    match = FLOOR.match(requirement)
    if match is None:
        raise ValueError(f"{requirement!r} is not of the form NAME>=FLOOR")
    name, floor = match.groups()
    return f"{name}=={floor}"


def floor_pins(project, tool_names):
    runtime = project["dependencies"]
    dev = {normalised(re.match(r"\s*([A-Za-z0-9._\-]+)", r).group(1)): r for r in project["optional-dependencies"]["dev"]}
    missing = [name for name in tool_names if normalised(name) not in dev]
    if missing:
        raise ValueError(f"not in the dev extra: {', '.join(missing)}")
    return [pin(r) for r in runtime] + [pin(dev[normalised(name)]) for name in tool_names]


def main(argv):
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    try:
        pins = floor_pins(project, argv)
    except ValueError as error:
        sys.exit(f"{sys.argv[0]}: {error}")
    print("\n".join(pins))


if __name__ == "__main__":
    main(sys.argv[1:])
