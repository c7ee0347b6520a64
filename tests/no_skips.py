"""A pytest plugin that fails the session when any test was skipped.

Every test runs everywhere: the suite makes its own data, so a skip can only hide a test that did not
run (missing data, a missing tool). Skips are counted from the reports of collection and of every test
phase; an expected failure (xfail) is not a skip.
"""

from __future__ import annotations

import pytest

_skipped: list[str] = []


def _record(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_collectreport(report) -> None:
    _record(report)


def pytest_runtest_logreport(report) -> None:
    _record(report)


def pytest_terminal_summary(terminalreporter) -> None:
    if _skipped:
        terminalreporter.write_line(
            f"FAILED: {len(_skipped)} skipped (this suite allows none): " + ", ".join(_skipped[:10]), red=True
        )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    if _skipped and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
