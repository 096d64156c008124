"""environment.yml (conda) and pyproject.toml (pip) name the same packages at the same versions."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement(spec):
    name, rest = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", spec).groups()
    return name.lower().replace("_", "-"), rest.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = dict(map(requirement, project["dependencies"] + project["optional-dependencies"]["dev"]))
    conda_side = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        m = re.match(r"\s+- ([A-Za-z][^:#]*)$", line)
        if m and m.group(1).strip() not in ("pip", "-e ."):
            name, version = requirement(m.group(1).strip())
            if name != "python":
                conda_side[name] = version
    assert conda_side == pip_side


def test_makefile_and_ci_run_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
