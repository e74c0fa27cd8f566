"""The CI recipe of docs/ci.md gates: a step that pipes `mfm-bench compare` into another command (``| tee``) must
run with pipefail, or the step takes the last command's exit status and a regression passes."""

import re
from pathlib import Path

import yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"


def test_the_recipe_keeps_compares_exit_status():
    (block,) = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    steps = yaml.safe_load(block)["jobs"]["gate"]["steps"]
    piped = [s for s in steps if "mfm-bench compare" in s.get("run", "") and "|" in s["run"].replace("||", "")]
    assert piped, "the recipe has no compare step piped into a file any more: update this test"
    for step in piped:
        # GitHub runs an unspecified shell as `bash -e {0}` (no pipefail); `shell: bash` adds -o pipefail
        assert step.get("shell") == "bash" or "pipefail" in step["run"], step["name"]
