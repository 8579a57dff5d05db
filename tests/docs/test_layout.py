"""The tests mirror the code: every module of ``chalicelib`` and ``mcd_tools`` has a test module of its own,
and the map in docs/architecture.md names every module of the core.

A test module for ``x.py`` is any ``test_x*.py`` under ``tests/`` (``test_lookup_stage.py`` tests
``stages/lookup.py``); a new module without one fails here.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if p.name != "__init__.py")


def test_every_module_has_a_test_module_of_its_own() -> None:
    test_names = {p.stem for p in TESTS.rglob("test_*.py")}
    missing = [str(module.relative_to(ROOT)) for module in modules("chalicelib") + modules("mcd_tools")
               if not any(name == f"test_{module.stem}" or name.startswith(f"test_{module.stem}_")
                          for name in test_names)]
    assert missing == [], f"modules without a test module: {missing}"


def test_the_map_names_every_module_of_the_core() -> None:
    the_map = (ROOT / "docs" / "architecture.md").read_text().split("## The map", 1)[1].split("\n## ", 1)[0]
    unnamed = [m.name for m in modules("chalicelib/core") if m.name not in the_map]
    assert unnamed == [], f"docs/architecture.md's map does not name {unnamed}"


def test_test_modules_have_unique_names() -> None:
    """Test folders are not packages: two test modules of one name would shadow each other."""
    names = [p.name for p in TESTS.rglob("test_*.py")]
    assert sorted(names) == sorted(set(names))
