"""environment.yml (conda) and pyproject.toml (pip) name the same packages at the same versions."""

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

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
    ci_commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith("#")]
    assert "make test || main_status=$?" in ci_commands  # the README's command itself, its failure kept
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "-m pytest" in recipe and "-m browser" not in recipe  # the whole suite, browser tests included


def _run_ci_with_a_fake_make(tmp_path, failing=()):
    """Run .ci/run in a copy of .ci/, with a `make` that logs its arguments and fails for the targets in FAILING."""
    import os
    import shutil
    import subprocess

    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "chromium").write_text("#!/bin/sh\n")
    (bin_dir / "make").write_text(
        '#!/bin/sh\necho "$*" >> "$FAKE_MAKE_LOG"\n'
        f'case " {" ".join(failing)} " in *" $* "*) echo "make $* failed"; exit 2;; esac\n')
    for tool in ("chromium", "make"):
        (bin_dir / tool).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_MAKE_LOG=str(tmp_path / "make.log"))
    run = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, env=env)
    return run, (tmp_path / "make.log").read_text().splitlines()


@pytest.mark.parametrize("failing", [(), ("test",), ("test-floors",), ("test", "test-floors")])
def test_ci_runs_make_test_and_the_floors_job_and_fails_if_either_fails(tmp_path, failing):
    run, calls = _run_ci_with_a_fake_make(tmp_path, failing)
    assert sorted(calls) == sorted(["-j2 install .venv-floors/.floors-installed", "test-floors", "test"])
    assert calls[0].startswith("-j2 install")  # both environments before either suite
    assert (run.returncode == 0) == (not failing), run.stdout + run.stderr
    if "test-floors" in failing:
        assert "make test-floors failed" in run.stdout  # the floors job's output is shown


def _run_browser_test(tmp_path, **extra_env):
    """Run the browser test in a child pytest with Chromium pointed at a path that does not exist."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "VAELIB_REQUIRE_BROWSER"}
    env.update(VAELIB_CHROMIUM=str(tmp_path / "no-chromium"), **extra_env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           str(ROOT / "tests" / "test_browser_sliders.py")],
                          capture_output=True, text=True, env=env, cwd=ROOT)


def test_ci_fails_when_the_browser_test_cannot_run(tmp_path):
    """Without Chromium the browser test skips on a developer's machine, and fails where CI requires it."""
    skipped = _run_browser_test(tmp_path)
    assert skipped.returncode in (0, 5), skipped.stdout  # 5: pytest ran no test (the module skipped)
    assert "skipped" in skipped.stdout and "apt-get install" in skipped.stdout
    failed = _run_browser_test(tmp_path, VAELIB_REQUIRE_BROWSER="1")
    assert failed.returncode != 0 and "must run" in failed.stdout


def test_ci_requires_the_browser_test():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "VAELIB_REQUIRE_BROWSER=1" in ci


def _make_dry_run(target, tmp_path):
    """What `make TARGET` would run in a fresh checkout (a dry run in a copy of the Makefile)."""
    import shutil
    import subprocess

    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "floor_requirements.py", tmp_path / "tools" / "floor_requirements.py")
    return subprocess.run(["make", "-n", target], cwd=tmp_path, capture_output=True, text=True, check=True).stdout


def test_make_lab_installs_the_lab_and_starts_for_root_too(tmp_path):
    import os

    commands = _make_dry_run("lab", tmp_path)
    assert '-e ".[lab]"' in commands and ".[dev]" not in commands
    lab_line = next(line for line in commands.splitlines() if "jupyter lab" in line)
    assert ("--allow-root" in lab_line) == (os.geteuid() == 0)


def test_make_test_installs_the_test_tools(tmp_path):
    assert '-e ".[dev]"' in _make_dry_run("test", tmp_path)


def _floor_requirements():
    spec = importlib.util.spec_from_file_location("floor_requirements", ROOT / "tools" / "floor_requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_floors_job_pins_every_runtime_dependency_to_its_declared_floor():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _floor_requirements().floor_pins(project, ["pytest"])
    dev = dict(map(requirement, project["optional-dependencies"]["dev"]))
    declared = list(map(requirement, project["dependencies"])) + [("pytest", dev["pytest"])]
    assert all(re.fullmatch(r">=[0-9][0-9.]*", rest) for _, rest in declared), declared  # one floor, no cap
    assert [pin.lower() for pin in pins] == [f"{name}=={rest[2:]}" for name, rest in declared]


@pytest.mark.parametrize("bad", ["numpy", "numpy>=1.26,<3", "numpy==1.26", "numpy>1.26"])
def test_floor_requirements_refuses_a_requirement_without_a_single_floor(bad):
    project = {"dependencies": [bad], "optional-dependencies": {"dev": []}}
    with pytest.raises(ValueError, match="NAME>=FLOOR"):
        _floor_requirements().floor_pins(project, [])


def test_floor_requirements_refuses_a_tool_the_dev_extra_does_not_list():
    project = {"dependencies": ["numpy>=1.26"], "optional-dependencies": {"dev": ["pytest>=8.0"]}}
    with pytest.raises(ValueError, match="not in the dev extra: nbval"):
        _floor_requirements().floor_pins(project, ["pytest", "nbval"])


def test_make_test_floors_installs_exactly_the_floors_apart_and_runs_the_tests_there(tmp_path):
    commands = _make_dry_run("test-floors", tmp_path)
    assert "tools/floor_requirements.py" in commands
    install = next(line for line in commands.splitlines() if "floors.txt -e" in line)
    assert "--only-binary :all:" in install and "-r .venv-floors/floors.txt" in install and ".[" not in install
    run = next(line for line in commands.splitlines() if "-m pytest" in line)
    assert ".venv-floors/bin/python -m pytest" in run and "-m \"not browser\"" in run
    assert "NUMBA_CACHE_DIR=" in commands  # the floors' Numba keeps its compiled kernels apart


READERS_DOCS = ("README.md", "benchmarks/README.md", "docs/README.md", "app/README.md")


def test_the_docs_speak_of_the_project_alone():
    """A reader's documents say nothing about how the work was organised, nor point into a team's folders."""
    import re

    for name in READERS_DOCS:
        text = (ROOT / name).read_text()
        for phrase in (r"\bthe issue\b", r"\bthis session\b", r"\bhelper\b", r"\.\./shared"):
            assert not re.search(phrase, text, flags=re.IGNORECASE), f"{name} says {phrase!r}"
