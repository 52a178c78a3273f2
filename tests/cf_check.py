"""Run the CF checker of the compliance-checker package (offline, cf:1.8) on a NetCDF file."""

import json
from pathlib import Path


def cf_failures(path: Path, report_dir: Path) -> dict[int, list]:
    """Failed CF-1.8 checks of a file by priority weight (3 = high/error, 2 = medium, 1 = low)."""
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    CheckSuite.load_all_available_checkers()
    report = Path(report_dir) / f"{Path(path).stem}.cf.json"
    # the checker's own exceptions (its monotonicity check subtracts string coordinates such as region
    # names) are not findings about the file, so only the scored checks are returned
    ComplianceChecker.run_checker(
        str(path), ["cf:1.8"], verbose=0, criteria="normal", output_filename=str(report), output_format="json"
    )
    result = json.loads(report.read_text())["cf:1.8"]
    failed: dict[int, list] = {1: [], 2: [], 3: []}
    for c in result["all_priorities"]:
        if c["value"][0] < c["value"][1]:
            failed[c["weight"]].append((c["name"], c["msgs"]))
    return failed
