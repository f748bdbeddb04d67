"""The OASIS ABNF test cases (../shared/testdata/oasis-odata/) through the parser layer alone.

The cases use the committee's own model, so no database is involved: every case must parse, be refused as
invalid, or be declared unsupported; none may crash; every case the file marks invalid must be refused.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from payroster.odata import literals, parser
from payroster.odata.errors import ODataSyntaxError, ODataUnsupported
from tests.odata.conftest import oasis_dir

CASES = oasis_dir() / "odata-abnf-testcases.yaml"
EXPRESSION_RULES = {"commonExpr", "boolCommonExpr", "boolcommonExpr"}
OPTION_RULES = {"filter": "filter", "orderby": "orderby", "orderBy": "orderby", "select": "select", "expand": "expand"}
LITERAL_EXTRA = {"boolean", "guid", "null"}


def load_cases() -> list[dict[str, Any]]:
    """The test cases; one Input holds a raw tab, which YAML forbids in a plain scalar, so it is quoted."""
    text = CASES.read_text(encoding="utf-8")
    text = re.sub(r"^(\s+Input: )(.*\t.*)$", lambda m: m.group(1) + json.dumps(m.group(2)), text, flags=re.M)
    data = yaml.load(text, Loader=yaml.BaseLoader)  # BaseLoader: every scalar stays a string
    return [c for c in data["TestCases"] if _runner(c["Rule"]) is not None]


def _runner(rule: str) -> Callable[[str], object] | None:
    if rule in EXPRESSION_RULES:
        return lambda text: parser.parse_expression(urllib.parse.unquote(text))
    if rule in OPTION_RULES:
        return lambda text: _option(OPTION_RULES[rule], text)
    if rule in LITERAL_EXTRA or rule.endswith(("Literal", "Value", "ValueInUrl")):
        return lambda text: literals.require(rule, text)
    return None


def _option(expected: str, text: str) -> object:
    """What the HTTP layer does with one ``name=value`` pair of the query string."""
    name, sep, value = text.partition("=")
    if not sep or parser.option_name(name) != expected:
        raise ODataSyntaxError(f"not a ${expected} option", 0)
    parse = {
        "filter": parser.parse_expression,
        "orderby": parser.parse_orderby,
        "select": parser.parse_select,
        "expand": parser.parse_expand,
    }[expected]
    return parse(urllib.parse.unquote(value))


def outcome(case: dict[str, Any]) -> str:
    """parsed, invalid or unsupported; any other exception propagates (a crash)."""
    run = _runner(case["Rule"])
    assert run is not None
    try:
        run(case["Input"])
    except ODataSyntaxError:
        return "invalid"
    except ODataUnsupported:
        return "unsupported"
    return "parsed"


def test_abnf_cases_parse_or_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Zero crashes; every case marked invalid is refused; the tally is printed."""
    cases = load_cases()
    assert len(cases) > 300
    tally: Counter[str] = Counter()
    wrong: list[str] = []
    for case in cases:
        result = outcome(case)
        tally[result] += 1
        marked_invalid = "FailAt" in case
        if marked_invalid and result != "invalid":
            wrong.append(f"accepted invalid [{case['Rule']}] {case['Input']!r}: {result}")
        if not marked_invalid and result == "invalid":
            wrong.append(f"refused valid [{case['Rule']}] {case['Input']!r}")
    with capsys.disabled():
        print(f"\nOASIS ABNF cases: {len(cases)} run, {dict(tally)}")
    assert not wrong, "\n".join(wrong)
