"""`snapsafe audit` and `snapsafe leaks` through the console script."""

from __future__ import annotations

import json

import pytest

from snapsafe.audit.differential import analyse
from tests.helpers import EXAMPLES, TARGETS, snapsafe


def audit_json(*args: str):
    res = snapsafe("audit", *args, "--json", timeout=300)
    return res, json.loads(res.stdout)


@pytest.mark.parametrize("example", ["hello", "secret_refill", "snapstart", "numpy_heavy"])
def test_examples_have_no_unexpected_duplicates(example):
    res, report = audit_json(f"{EXAMPLES}/{example}.py:handler", "--clones", "4")
    assert res.returncode == 0, report
    assert report["failing"] == 0 and report["clones"] == 4 and report["cold"] == 2
    assert [f["key"] for f in report["findings"]] == ["hash.str"], "only the known-by-design hash secret"
    assert report["findings"][0]["category"] == "known"


def test_init_time_uuid_is_found_with_its_json_path():
    res, report = audit_json(f"{TARGETS}/init_id.py:handler")
    assert res.returncode == 1
    user = [f for f in report["findings"] if f["category"] == "user"]
    assert [f["json_path"] for f in user] == ["$.instance_id"]
    assert len(user[0]["clones"]) == 8
    assert len(set(user[0]["cold_values"])) == 2


def test_disabled_restorer_shows_as_its_own_category():
    res, report = audit_json(f"{EXAMPLES}/hello.py:handler", "--clones", "3", "--disable-restorer", "random")
    assert res.returncode == 1
    disabled = {f["key"] for f in report["findings"] if f["category"] == "restorer-disabled"}
    assert "random.global" in disabled or "random.instance:hello.rng" in disabled
    assert "response:$.random" in {f["key"] for f in report["findings"] if f["category"] == "user"}


def test_text_output_names_the_duplicate():
    res = snapsafe("audit", f"{TARGETS}/init_id.py:handler", "--clones", "3")
    assert res.returncode == 1
    assert "DUPLICATE    $.instance_id" in res.stdout and "known        hash.str" in res.stdout


def test_audit_of_a_target_that_fails_init_exits_2():
    res = snapsafe("audit", f"{TARGETS}/init_raises.py:handler")
    assert res.returncode == 2 and "cannot reach the config service" in res.stderr


def test_audit_usage_errors():
    assert snapsafe("audit", f"{EXAMPLES}/hello.py:handler", "--cold", "1").returncode == 2


def test_analysis_rules():
    cold = [{"a": "k1", "b": "x1x1", "n": 29999, "response:$.id": "u1u1"},
            {"a": "k1", "b": "y1y1", "n": 30000, "response:$.id": "u2u2"}]
    clones = [("c1", {"a": "k1", "b": "z1z1", "n": 30000, "response:$.id": "u3u3"}),
              ("c2", {"a": "k1", "b": "z1z1", "n": 30000, "response:$.id": "u4u4"}),
              ("c3", {"a": "k1", "b": "w1w1", "n": 30000, "response:$.id": "u4u4"})]
    report = analyse(cold, clones)
    assert report.constants == 2, "'a' is the same in every cold start; 'n' has too little entropy to judge"
    assert [(f.key, f.clones) for f in report.findings] == [("b", ["c1", "c2"]), ("response:$.id", ["c2", "c3"])]


def test_leak_check_with_control_passes_on_secret_refill():
    res = snapsafe("leaks", "--secrets-from", f"{EXAMPLES}/secret_refill.py:handler", "--json")
    out = json.loads(res.stdout)
    assert res.returncode == 0 and out["passed"]
    assert out["secret_hits"] == 0 and out["control_hits"] >= 1


def test_leak_check_catches_a_copy_made_before_the_snapshot():
    res = snapsafe("leaks", "--secrets-from", f"{TARGETS}/leaky_secret.py:handler")
    assert res.returncode == 1 and "LEAK: the secret canary is in the snapshot" in res.stdout


def test_audit_with_leaks():
    res, report = audit_json(f"{EXAMPLES}/secret_refill.py:handler", "--clones", "2", "--leaks")
    assert res.returncode == 0 and report["leaks"]["passed"] and report["leaks"]["secrets_planted"] >= 1


@pytest.mark.parametrize("args, expected", [
    ((), "give either a SNAPSHOT"),
    (("/nonexistent/snap", "--canary", "deadbeef"), "not a snapshot directory"),
    (("/tmp", "--canary", "deadbeef"), "manifest.json: missing"),
    (("/tmp", "--canary", "xyz"), "not an even number of hex digits"),
    (("/tmp", "--canary", "abcd"), "shorter than 4 bytes"),
])
def test_leaks_usage_errors(args, expected):
    res = snapsafe("leaks", *args)
    assert res.returncode == 2 and expected in res.stderr
