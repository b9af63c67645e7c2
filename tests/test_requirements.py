"""What production installs: requirements.txt holds no test tool, and it is closed under dependencies
(every package it names needs only packages it also names), so ``pip install -r requirements.txt``
cannot pull a test tool in behind our back. requirements-dev.txt adds the test tools on top."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
TEST_TOOLS = {"pytest", "pytest-django", "playwright", "schemathesis", "hypothesis",
              "langgraph-checkpoint-conformance", "import-linter", "pip-licenses"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        pins[_canonical(requirement.name)] = str(requirement.specifier)
    return pins


class RequirementsTests:
    def test_production_requirements_hold_no_test_tool(self) -> None:
        assert not TEST_TOOLS & set(_pins(ROOT / "requirements.txt"))

    def test_the_dev_file_adds_the_test_tools_on_top_of_production(self) -> None:
        text = (ROOT / "requirements-dev.txt").read_text()
        assert "-r requirements.txt" in text.splitlines()
        dev = _pins(ROOT / "requirements-dev.txt")
        assert TEST_TOOLS <= set(dev)
        assert not set(dev) & set(_pins(ROOT / "requirements.txt")), "a package pinned in both files"

    def test_production_requirements_are_closed_under_their_dependencies(self) -> None:
        pins = _pins(ROOT / "requirements.txt")
        env = default_environment()
        missing = {}
        for name in pins:
            for spec in metadata.requires(name) or []:
                requirement = Requirement(spec)
                env["extra"] = ""
                if requirement.marker is not None and not requirement.marker.evaluate(env):
                    continue
                if _canonical(requirement.name) not in pins:
                    missing.setdefault(name, []).append(requirement.name)
        assert not missing, f"installed by requirements.txt but not pinned there: {missing}"
