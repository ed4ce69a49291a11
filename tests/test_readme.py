"""The README's commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command() -> None:
    """The README's test command appears verbatim in .ci/run."""
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    test_cmd = next(b for b in blocks if b.rstrip().endswith("pytest"))
    assert test_cmd.strip() in (ROOT / ".ci" / "run").read_text()
