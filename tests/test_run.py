"""`snapsafe run` through the console script, as a user runs it."""

from __future__ import annotations

import pytest

from tests.helpers import EXAMPLES, json_lines, snapsafe


def distinct(rows, key):
    values = [r["result"][key] for r in rows]
    return len(set(map(str, values))) == len(values)


@pytest.fixture(scope="module")
def hello():
    res = snapsafe("run", f"{EXAMPLES}/hello.py:handler", "--clones", "4", "--json", "--event", '{"name": "Ada"}')
    assert res.returncode == 0, res.stderr
    return json_lines(res.stdout), res.stderr


def test_hello_rows_have_the_documented_keys(hello):
    (rows, summary), _ = hello
    assert len(rows) == 4 and summary["clones"] == 4 and summary["failed"] == 0
    for row in rows:
        assert {"clone", "generation", "restore_ms", "unique_ms", "invoke_ms", "result", "error"} <= row.keys()
        assert row["error"] is None and row["result"]["name"] == "Ada"
        assert row["restore_ms"] > 0 and row["unique_ms"] > 0 and row["invoke_ms"] > 0


def test_hello_clones_are_unique(hello):
    (rows, summary), _ = hello
    generations = [r["generation"] for r in rows]
    assert len(set(generations)) == 4 and summary["distinct_generations"]
    assert [r["result"]["generation"] for r in rows] == generations, "the handler sees its clone's generation"
    for key in ("random", "uuid4", "uuid1", "tempfile"):
        assert distinct(rows, key), key
    assert len({r["pid"] for r in rows}) == 4


def test_clone_output_is_tagged_with_the_clone_id(hello):
    (rows, _), stderr = hello
    for row in rows:
        assert f"[{row['clone']}] hello from generation {row['generation']}" in stderr


def test_text_output_shows_table_and_cold_start_comparison():
    res = snapsafe("run", f"{EXAMPLES}/hello.py:handler", "--clones", "2")
    assert res.returncode == 0, res.stderr
    assert "clone-1" in res.stdout and "clone-2" in res.stdout
    assert "cold start" in res.stdout and "faster" in res.stdout


def test_numpy_draws_differ_across_clones():
    res = snapsafe("run", f"{EXAMPLES}/numpy_heavy.py:handler", "--clones", "3", "--json", timeout=300)
    assert res.returncode == 0, res.stderr
    rows, _ = json_lines(res.stdout)
    assert distinct(rows, "draws") and distinct(rows, "legacy_draw")


def test_numpy_draws_repeat_without_restorers():
    """Control: the clones really are copies, so without restorers they draw the same numbers."""
    res = snapsafe("run", f"{EXAMPLES}/numpy_heavy.py:handler", "--clones", "2", "--json",
                   "--disable-restorer", "numpy", timeout=300)
    rows, _ = json_lines(res.stdout)
    assert rows[0]["result"]["draws"] == rows[1]["result"]["draws"]


def test_secret_is_refilled_per_clone():
    res = snapsafe("run", f"{EXAMPLES}/secret_refill.py:handler", "--clones", "3", "--json")
    assert res.returncode == 0, res.stderr
    rows, _ = json_lines(res.stdout)
    assert distinct(rows, "key_id") and distinct(rows, "signature")


def test_snapstart_hooks_run_in_lambda_order():
    res = snapsafe("run", f"{EXAMPLES}/snapstart.py:handler", "--clones", "2", "--json")
    assert res.returncode == 0, res.stderr
    rows, _ = json_lines(res.stdout)
    for row in rows:
        assert row["result"]["hooks"] == ["before:flush_cache", "before:close_connection",
                                          "after:reconnect", "after:log"]
        assert row["result"]["connection"]["open"] is True
        assert 0 < row["result"]["remaining_ms"] <= 30000
    assert distinct(rows, "connection")


def test_event_from_file(tmp_path):
    event = tmp_path / "event.json"
    event.write_text('{"name": "from a file"}')
    res = snapsafe("run", f"{EXAMPLES}/hello.py:handler", "--clones", "1", "--json", "--event", f"@{event}")
    rows, _ = json_lines(res.stdout)
    assert rows[0]["result"]["name"] == "from a file"


def test_package_module_target(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "app.py").write_text("import random\nR = random.Random(1)\n"
                                "def handler(event, context):\n    return R.random()\n")
    res = snapsafe("run", "mypkg.app:handler", "--clones", "2", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows, _ = json_lines(res.stdout)
    assert rows[0]["result"] != rows[1]["result"]
