"""The wheel stands alone: one `klippfisk` namespace beside any `spec` or `adapters`
distribution, with its schemas, examples, typing marker and licence inside.

The slow test builds the wheel from a copy of the sources and installs it, beside two tiny
distributions that install top-level `spec` and `adapters` packages (as the PyPI ones of those
names do), into a fresh virtualenv; then, from another directory, runs the README's example
and imports all three. Everything is offline: the new virtualenv borrows the running
environment's dependencies through a .pth file (not --system-site-packages, which would give
the base interpreter's), and the klippfisk it runs is the one installed from the wheel.
"""

from __future__ import annotations

import ast
import os
import shutil
import site
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
PACKAGE_DIR: dict[str, str] = SETUPTOOLS["package-dir"]
# what the wheel installs under klippfisk/ and the clone keeps at its top
MAPPED = {folder for name, folder in PACKAGE_DIR.items() if name != "klippfisk"}
NOT_SOURCES = {".git", ".venv", ".ci-venv", "node_modules", "build", "dist", "__pycache__"}


def sources(folder: Path, pattern: str = "*.py") -> list[Path]:
    """Files matching `pattern` under `folder`, leaving out tool and build folders."""
    return [
        path
        for path in folder.rglob(pattern)
        if not NOT_SOURCES.intersection(path.relative_to(folder).parts)
        and not any(part.endswith(".egg-info") for part in path.parts)
    ]


def bare_imports(path: Path) -> list[str]:
    """`import spec` or `from engine.x import y`: a top-level name the wheel does not install."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [name for name in names if name.split(".")[0] in MAPPED]
    return found


def test_no_module_imports_a_bare_top_level_package() -> None:
    offenders = {
        str(path.relative_to(ROOT)): names
        for path in sources(ROOT)
        if (names := bare_imports(path))
    }
    assert offenders == {}, "import these as klippfisk.<name>"


def test_the_packages_list_names_every_folder_that_holds_python() -> None:
    def packages(pattern: str) -> set[str]:
        found = set()
        for name, folder in PACKAGE_DIR.items():
            for path in sources(ROOT / folder, pattern):
                found.add(".".join((name, *path.parent.relative_to(ROOT / folder).parts)))
        return found

    assert packages("*.py") == packages("__init__.py") == set(SETUPTOOLS["packages"])


# -- the wheel, installed beside foreign `spec` and `adapters` ------------------------------


def copy_sources(target: Path) -> Path:
    """The files a build reads, copied, so that building writes nothing into the clone."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, target / name)
    for folder in PACKAGE_DIR.values():
        shutil.copytree(ROOT / folder, target / folder, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    return target


def foreign_distribution(where: Path, name: str) -> Path:
    """A distribution `<name>-squatter` that installs a top-level package `<name>`."""
    project = where / f"{name}-squatter"
    (project / name).mkdir(parents=True)
    (project / name / "__init__.py").write_text(f'OWNER = "{name}-squatter"\n')
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}-squatter"\nversion = "1.0"\n'
        f'[tool.setuptools]\npackages = ["{name}"]\n'
    )
    return project


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def fresh_virtualenv(path: Path) -> Path:
    """A virtualenv whose dependencies are the running environment's: its site-packages
    folders are listed in a .pth file, so they are searched after the venv's own."""
    venv.EnvBuilder(with_pip=False).create(path)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = run(path / "bin" / "python", "-c", where, cwd=path).strip()
    borrowed = [
        p for p in [*site.getsitepackages(), site.getusersitepackages()] if Path(p).is_dir()
    ]
    (Path(purelib) / "borrowed-dependencies.pth").write_text("\n".join(borrowed) + "\n")
    return path / "bin"


def expected_wheel_files(tree: Path) -> set[str]:
    """Every module, schema and example of the mapped folders, where the wheel puts it."""
    expected = {"klippfisk/py.typed"}
    for name, folder in PACKAGE_DIR.items():
        for pattern in ("*.py", "*.schema.json", "*.yaml"):
            for path in sources(tree / folder, pattern):
                inside = path.relative_to(tree / folder).as_posix()
                expected.add("/".join((*name.split("."), inside)))
    return expected


@pytest.mark.slow
def test_the_wheel_installs_beside_foreign_spec_and_adapters_and_runs_hello(
    tmp_path: Path,
) -> None:
    tree = copy_sources(tmp_path / "src")
    wheels = tmp_path / "wheels"
    squatters = [foreign_distribution(tmp_path, name) for name in ("spec", "adapters")]
    pip = ("-m", "pip", "--disable-pip-version-check")
    offline = ("--no-deps", "--no-index")
    build = (sys.executable, *pip, "wheel", *offline, "--no-build-isolation", "-w", wheels)
    run(*build, tree, *squatters, cwd=tmp_path)
    (wheel,) = wheels.glob("klippfisk-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    assert expected_wheel_files(tree) <= names
    dist_info = f"klippfisk-{PYPROJECT['project']['version']}.dist-info"
    assert {name.split("/")[0] for name in names} == {"klippfisk", dist_info}  # no bare `spec`
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(wheel).read(metadata).decode()

    bin_dir = fresh_virtualenv(tmp_path / "venv")
    python = bin_dir / "python"
    # --ignore-installed: the borrowed folders hold the running environment's own (editable)
    # klippfisk, which pip must neither count as installed nor try to remove
    install = (python, *pip, "install", *offline, "--ignore-installed")
    run(*install, *wheels.glob("*.whl"), cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["KLIPPFISK_DATA_DIR"] = str(tmp_path / "data")
    out = run(bin_dir / "klippfisk", "job", "run", "--example", "hello", cwd=elsewhere, env=env)
    assert out == "hello from klippfisk\n"
    assert (tmp_path / "data" / "ledger.db").is_file()
    served = run(bin_dir / "klippfisk", "spec", "schema", cwd=elsewhere, env=env)
    assert served == (ROOT / "schemas" / "job.schema.json").read_text(encoding="utf-8")

    imports = "import klippfisk, klippfisk.spec, spec, adapters\n"
    imports += "print(klippfisk.__file__, spec.OWNER, adapters.OWNER, klippfisk.spec.__file__)"
    where = run(python, "-c", imports, cwd=elsewhere, env=env).split()
    assert Path(where[0]).is_relative_to(tmp_path / "venv")
    assert where[1:3] == ["spec-squatter", "adapters-squatter"]
    assert Path(where[3]).is_relative_to(tmp_path / "venv")
