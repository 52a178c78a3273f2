"""The README's set-up commands and the CI script stay in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Quick start\s+```\n(.*?)```", readme, re.S)
    assert block, "README has no Quick start code block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_commands_default_case_then_tests():
    run_default, run_tests = quick_start_commands()
    assert run_default.endswith("airshed run examples/jjj.toml")
    assert (ROOT / "examples" / "jjj.toml").is_file()
    assert run_tests == "python -m pytest"


def test_ci_script_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = (line.strip() for line in ci.splitlines())
    commands = [line for line in lines if line and not line.startswith("#")]
    assert quick_start_commands()[1] in commands
    assert any(c.startswith("python -m pip install") and '".[test]"' in c for c in commands)
