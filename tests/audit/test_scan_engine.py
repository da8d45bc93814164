"""The engine through the Python API: name resolution, init scope, noqa, code selection, positions."""

from __future__ import annotations

import sys
import textwrap

import pytest

from snapsafe.audit.scan import RULES, UnknownCodeError, check_source, select_codes
from snapsafe.audit.scan.noqa import directives


def codes(source: str, **kw: object) -> list[tuple[int, str]]:
    result = check_source(textwrap.dedent(source), "t.py", **kw)  # type: ignore[arg-type]
    return [(f.line, f.code) for f in result.findings + result.errors]


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np\nR = np.random.default_rng()\n",
        "import numpy.random as npr\nR = npr.default_rng()\n",
        "from numpy import random as nr\nR = nr.RandomState()\n",
        "from random import Random as R\nX = R()\n",
        "import random as r\nr.seed(1)\n",
        "import os.path, random\nX = random.Random()\n",
        "try:\n    import numpy as np\nexcept ImportError:\n    np = None\nR = np.random.default_rng()\n",
    ],
)
def test_aliases_resolve(source: str) -> None:
    assert [c for _, c in codes(source)] == ["SNAP001"]


@pytest.mark.parametrize(
    "source",
    [
        "from uuid import uuid4\nX = uuid4()\n",
        "import uuid as u\nX = u.uuid1()\n",
        "from datetime import datetime\nX = datetime.now()\n",
        "import datetime as dt\nX = dt.date.today()\n",
        "from time import perf_counter as pc\nX = pc()\n",
    ],
)
def test_from_imports_resolve(source: str) -> None:
    assert len(codes(source)) == 1


def test_shadowed_names_are_not_the_module() -> None:
    assert codes("import random\nrandom = object()\nX = random.Random()\n") == []
    assert codes("def f(random):\n    return random.Random()\nX = f(None)\n") == []


def test_relative_and_unknown_imports_are_ignored() -> None:
    assert codes("from .random import Random\nX = Random()\n") == []
    assert codes("X = Random()\n") == []


def test_local_import_inside_a_function_called_at_init() -> None:
    source = """
        def load():
            import random
            return random.Random()
        X = load()
    """
    assert codes(source) == [(4, "SNAP001")]


def test_recursion_between_functions_terminates() -> None:
    source = """
        import time
        def a(n):
            return b(n) if n else time.time()
        def b(n):
            return a(n - 1)
        X = a(3)
    """
    assert codes(source) == [(4, "SNAP003")]


def test_handler_time_code_is_not_init() -> None:
    source = """
        import random, time, uuid, threading, os, requests
        def handler(event, context):
            rng = random.Random()
            t = time.time()
            threading.Thread(target=print).start()
            token = os.environ["API_TOKEN"]
            return requests.get("https://x").json(), uuid.uuid4(), rng, t, token
    """
    assert codes(source) == []


def test_async_functions_and_decorators() -> None:
    source = """
        import functools, random
        @functools.lru_cache(maxsize=random.randint(1, 9))
        async def fetch(x=random.Random()):
            return random.Random()
    """
    assert codes(source) == [(4, "SNAP001")]  # the decorator's value is not kept; the default is


def test_walrus_at_module_level_is_kept() -> None:
    assert codes("import uuid\nif (ID := uuid.uuid4()):\n    pass\n") == [(2, "SNAP002")]


def test_comprehension_values_are_kept_but_not_their_iterables() -> None:
    assert codes("import uuid, random\nIDS = [uuid.uuid4() for _ in range(3)]\n") == [(2, "SNAP002")]
    assert codes("import random\nXS = [x for x in range(3) if random.random() > 0.5]\n") == []


def test_match_statement_and_try_star_bodies_run_at_init() -> None:
    source = """
        import time, uuid
        match 1:
            case 1:
                A = time.time()
        try:
            pass
        except* ValueError:
            B = uuid.uuid4()
    """
    assert codes(source) == [(5, "SNAP003"), (9, "SNAP002")]


def test_hook_registered_through_snapsafe_call_form() -> None:
    source = """
        import random, snapsafe
        def refill():
            return random.Random()
        snapsafe.after_restore(refill)
        X = refill()
    """
    assert codes(source) == []


def test_select_and_ignore() -> None:
    source = "import random, time\nR = random.Random()\nT = time.time()\n"
    assert codes(source, codes=["SNAP003"]) == [(3, "SNAP003")]
    assert select_codes("SNAP00", "SNAP001") == [c for c in RULES if c != "SNAP001"]
    assert select_codes("snap003, SNAP004") == ["SNAP003", "SNAP004"]
    assert select_codes("ALL") == list(RULES)
    assert select_codes(None, "SNAP") == []
    for bad in ("SNAP999", "SNA", "E501", "SNAP000"):
        with pytest.raises(UnknownCodeError):
            select_codes(bad)
        with pytest.raises(UnknownCodeError):
            select_codes(None, bad)


def test_noqa_directives_come_from_comments_only() -> None:
    found = directives('x = 1  # noqa\ny = "# noqa"\nz = 2  # noqa: SNAP001, snap002 reason\nw = 3  # NoQA:SNAP003\n')
    assert found == {1: None, 3: frozenset({"SNAP001", "SNAP002"}), 4: frozenset({"SNAP003"})}


def test_noqa_on_the_last_line_of_a_multiline_call() -> None:
    source = "import random\nR = random.Random(\n    1,\n)  # noqa: SNAP001\n"
    result = check_source(source)
    assert result.findings == [] and result.suppressed == 1


def test_columns_count_characters_not_bytes() -> None:
    result = check_source('import uuid\nX = ("é€", uuid.uuid4())\n')
    (finding,) = result.findings
    assert (finding.line, finding.col) == (2, 12)
    assert (finding.end_line, finding.end_col) == (2, 24)  # one past the last character


def test_syntax_error_is_snap000_with_position() -> None:
    result = check_source("x = (\n", "broken.py")
    assert result.findings == []
    (error,) = result.errors
    assert (error.path, error.code, error.line) == ("broken.py", "SNAP000", 1)
    assert error.message.startswith("syntax error: ")


def test_degenerate_inputs() -> None:
    assert codes("") == []
    assert codes("# only a comment\n") == []
    deep = "X = " + "(" * 80 + "1" + ")" * 80 + "\n"
    assert codes(deep) == []
    assert [c for _, c in codes("X = " + "[" * 5000 + "]" * 5000 + "\n")] == ["SNAP000"]  # CPython refuses too


def test_deeply_nested_generated_code_is_still_analysed() -> None:
    long_sum = "import time\nX = time.time() + " + "+".join(["1"] * 20000) + "\n"
    assert codes(long_sum) == [(2, "SNAP003")]
    branches = "".join(f"elif x == {i}:\n    pass\n" for i in range(1, 3000))
    elifs = "import time\nx = 0\nif x == 0:\n    pass\n" + branches + "else:\n    T = time.time()\n"
    assert codes(elifs) == [(6004, "SNAP003")]
    assert sys.getrecursionlimit() < 100_000  # restored


def test_findings_carry_rule_name_and_fix() -> None:
    (finding,) = check_source("import random\nR = random.Random()\n").findings
    assert finding.rule == "prng-at-init"
    assert "after_restore" in finding.fix


def test_a_local_in_a_function_is_kept_only_when_it_escapes() -> None:
    source = """
        def peek():
            with open("secret.key") as f:
                data = f.read()
            print(len(data))
        def load():
            with open("secret.key") as f:
                data = f.read()
            return data
        peek()
        KEY = load()
    """
    assert codes(source) == [(7, "SNAP005")]
