"""``snapsafe scan`` through the installed console script: formats, exit codes, files, errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SCAN = FIXTURES / "scan"
ROOT = Path(__file__).resolve().parents[2]
SNAPSAFE = shutil.which("snapsafe", path=os.path.dirname(sys.executable)) or shutil.which("snapsafe")
LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>SNAP\d{3}) (?P<message>.+)$")

BAD = "import random, time\nRNG = random.Random()\nSTARTED = time.time()\n"
CLEAN = "import random\n\ndef handler(event, context):\n    return random.Random().random()\n"


def scan(*args: str | os.PathLike[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert SNAPSAFE, "the snapsafe console script is not installed (pip install -e '.[test]')"
    return subprocess.run(
        [SNAPSAFE, "scan", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=60
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "clean.py").write_text(CLEAN)
    return tmp_path


def test_findings_exit_1_one_line_each_and_a_summary(tree: Path) -> None:
    done = scan("bad.py", "clean.py", cwd=tree)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert [LINE.match(line)["code"] for line in lines] == ["SNAP001", "SNAP003"]  # type: ignore[index]
    assert lines[0].startswith("bad.py:2:7: SNAP001 `random.Random()` creates")
    assert done.stderr.strip().splitlines()[-1] == "Found 2 findings."


def test_clean_exit_0(tree: Path) -> None:
    done = scan("clean.py", cwd=tree)
    assert (done.returncode, done.stdout) == (0, "")
    assert "Found 0 findings." in done.stderr


def test_exit_zero_still_prints(tree: Path) -> None:
    done = scan("--exit-zero", "bad.py", cwd=tree)
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 2


def test_select_and_ignore(tree: Path) -> None:
    assert [LINE.match(x)["code"] for x in scan("--select", "SNAP003", "bad.py", cwd=tree).stdout.splitlines()] == [  # type: ignore[index]
        "SNAP003"
    ]
    done = scan("--ignore", "SNAP001,SNAP003", "bad.py", cwd=tree)
    assert (done.returncode, done.stdout) == (0, "")
    assert scan("--select", "SNAP00", "--ignore", "SNAP003", "bad.py", cwd=tree).stdout.count("SNAP001") == 1


@pytest.mark.parametrize("option", ["--select", "--ignore"])
def test_unknown_code_is_a_usage_error(tree: Path, option: str) -> None:
    done = scan(option, "SNAP999", "bad.py", cwd=tree)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "SNAP999" in done.stderr


def test_missing_path_is_one_line_exit_2(tree: Path) -> None:
    done = scan("bad.py", "nope/missing.py", cwd=tree)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["snapsafe scan: error: no such file or directory: nope/missing.py"]


def test_unparsable_file_is_reported_and_the_rest_still_scanned(tree: Path) -> None:
    (tree / "broken.py").write_text("import os\n\ndef f(:\n    pass\n")
    done = scan(".", cwd=tree)
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert any(line.startswith("./broken.py:3:7: SNAP000 syntax error: ") for line in lines), lines
    assert sum("SNAP001" in line for line in lines) == 1  # bad.py was scanned too
    assert "could not be parsed" in done.stderr


def test_exit_zero_does_not_hide_a_parse_failure(tree: Path) -> None:
    (tree / "broken.py").write_text("x = (\n")
    assert scan("--exit-zero", ".", cwd=tree).returncode == 2


def test_directories_are_walked_for_python_files_only(tree: Path) -> None:
    for skipped in (".git", "__pycache__", "node_modules", ".venv", "venv", ".tox"):
        (tree / skipped).mkdir()
        (tree / skipped / "hidden.py").write_text(BAD)
    (tree / "myenv").mkdir()  # a virtualenv under any name
    (tree / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tree / "myenv" / "lib.py").write_text(BAD)
    (tree / "pkg" / "sub").mkdir(parents=True)
    (tree / "pkg" / "sub" / "deep.py").write_text(BAD)
    (tree / "pkg" / "notes.txt").write_text(BAD)
    (tree / "script").write_text(BAD)
    paths = {LINE.match(x)["path"] for x in scan(".", cwd=tree).stdout.splitlines()}  # type: ignore[index]
    assert paths == {"./bad.py", os.path.join(".", "pkg", "sub", "deep.py")}
    # a file named explicitly is scanned whatever its name
    assert scan("script", cwd=tree).returncode == 1


def test_binary_non_utf8_and_huge_files_are_skipped_with_a_note(tree: Path) -> None:
    (tree / "nul.py").write_bytes(b"import random\x00\nR = random.Random()\n")
    (tree / "latin1.py").write_bytes("# caf\xe9\nimport random\nR = random.Random()\n".encode("latin-1"))
    (tree / "huge.py").write_text(BAD + "#" * (5 * 1024 * 1024) + "\n")
    done = scan(".", cwd=tree)
    assert done.returncode == 1
    assert {LINE.match(x)["path"] for x in done.stdout.splitlines()} == {"./bad.py"}  # type: ignore[index]
    assert "skipped ./nul.py: binary file" in done.stderr
    assert "skipped ./latin1.py: not UTF-8" in done.stderr
    assert "skipped ./huge.py: larger than 5 MB" in done.stderr


def test_noqa_silences_and_is_counted(tree: Path) -> None:
    (tree / "quiet.py").write_text("import random\nR = random.Random()  # noqa: SNAP001 - fixed seed on purpose\n")
    done = scan("quiet.py", cwd=tree)
    assert (done.returncode, done.stdout) == (0, "")
    assert "1 silenced by noqa" in done.stderr


def test_json_format(tree: Path) -> None:
    (tree / "broken.py").write_text("x = (\n")
    done = scan("--format", "json", "bad.py", "broken.py", cwd=tree)
    assert done.returncode == 2
    items = json.loads(done.stdout)
    assert [(i["path"], i["line"], i["code"]) for i in items] == [
        ("bad.py", 2, "SNAP001"),
        ("bad.py", 3, "SNAP003"),
        ("broken.py", 1, "SNAP000"),
    ]
    first = items[0]
    assert first["col"] == 7 and first["rule"] == "prng-at-init" and "after_restore" in first["fix"]
    assert {"path", "line", "col", "end_line", "end_col", "code", "rule", "message", "fix"} <= set(first)
    assert json.loads(scan("--format", "json", "clean.py", cwd=tree).stdout) == []


def _validate_sarif(text: str) -> dict:
    log = json.loads(text)
    schema = json.loads((FIXTURES / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(log)
    return log


def test_sarif_validates_against_the_official_schema(tree: Path) -> None:
    (tree / "broken.py").write_text("x = (\n")
    (tree / "nul.py").write_bytes(b"\x00")
    done = scan("--format", "sarif", ".", cwd=tree)
    assert done.returncode == 2
    log = _validate_sarif(done.stdout)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["SNAP000", "SNAP001", "SNAP002", "SNAP003", "SNAP004", "SNAP005", "SNAP006"]
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("SNAP001", "warning"),
        ("SNAP003", "warning"),
        ("SNAP000", "error"),
    ]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 2, "startColumn": 7, "endLine": 2, "endColumn": 22}
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "bad.py"
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert "nul.py" in invocation["toolExecutionNotifications"][0]["message"]["text"]


def test_sarif_of_every_fixture_validates() -> None:
    done = scan("--format", "sarif", SCAN)
    assert done.returncode == 1
    log = _validate_sarif(done.stdout)
    assert len(log["runs"][0]["results"]) > 60
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.startswith("file:///")  # an absolute path becomes a file URI


def test_help_lists_the_rules() -> None:
    done = subprocess.run([SNAPSAFE, "scan", "--help"], capture_output=True, text=True, timeout=60)  # type: ignore[list-item]
    assert done.returncode == 0
    for code in ("SNAP001", "SNAP002", "SNAP003", "SNAP004", "SNAP005", "SNAP006"):
        assert code in done.stdout
    assert "--exit-zero" in done.stdout and "noqa" in done.stdout


def test_this_projects_own_source_is_clean() -> None:
    done = scan("src", cwd=ROOT)
    assert done.returncode == 0, done.stdout


def test_a_directory_without_python_files_warns(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("nothing to scan\n")
    done = scan(tmp_path)
    assert (done.returncode, done.stdout) == (0, "")
    assert "no Python files found" in done.stderr
