"""JUnit XML for ``gate`` and ``campaign``: one test case per run, so that any CI system lists
the runs as tests.

A run that reached the verdict it had to (the gate's) or was valid (a campaign's) passes; an
unexpected verdict is a ``failure``, and a campaign run whose checkers could not decide is an
``error``. The message says the verdict and the anomalies found; the text adds the command that
runs it again (``walrus-harness replay``) and where its summary is.
"""

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.checker.verdict import WORDS


class Row(Protocol):
    """A run as a campaign's table has it (``harness.campaign.Row``)."""

    nemesis: str
    seed: int
    verdict: bool | str
    path: Path
    seconds: float

    def anomaly_text(self) -> str:
        """The anomalies found, as ``kind=count`` pairs."""
        ...


@dataclass(frozen=True)
class Case:
    """One run as a JUnit test case."""

    name: str
    classname: str
    seconds: float
    failure: str | None = None
    """The message of a failure (an unexpected verdict), if it failed."""
    error: str | None = None
    """The message of an error (no verdict could be reached), if it erred."""
    text: str = ""


def case_of(row: Row, classname: str, must_be_valid: bool | None = None) -> Case:
    """The test case of a run: against the verdict it had to reach (``must_be_valid``), or,
    with none, passing only when valid."""
    verdict = WORDS.get(row.verdict, str(row.verdict))
    found = row.anomaly_text()
    text = (
        f"{verdict}; anomalies: {found}\n"
        f"run it again: walrus-harness replay {row.path}\n"
        f"summary: {row.path / 'summary.md'}"
    )
    name = f"{row.nemesis} seed {row.seed}"
    if must_be_valid is not None:
        want = "valid" if must_be_valid else "invalid"
        if row.verdict is must_be_valid:
            return Case(name, classname, row.seconds, text=text)
        return Case(name, classname, row.seconds, failure=f"{verdict} (must be {want})", text=text)
    if row.verdict is True:
        return Case(name, classname, row.seconds, text=text)
    if row.verdict is False:
        return Case(name, classname, row.seconds, failure=f"{verdict}: {found}", text=text)
    return Case(name, classname, row.seconds, error=f"{verdict}: {found}", text=text)


def write(path: Path, suite: str, cases: list[Case]) -> None:
    """Write ``cases`` as one JUnit test suite named ``suite``."""
    root = ET.Element("testsuites")
    element = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(cases)),
        failures=str(sum(c.failure is not None for c in cases)),
        errors=str(sum(c.error is not None for c in cases)),
        time=f"{sum(c.seconds for c in cases):.3f}",
    )
    for c in cases:
        case = ET.SubElement(
            element, "testcase", name=c.name, classname=c.classname, time=f"{c.seconds:.3f}"
        )
        if c.failure is not None:
            ET.SubElement(case, "failure", message=c.failure, type="verdict").text = c.text
        elif c.error is not None:
            ET.SubElement(case, "error", message=c.error, type="unknown").text = c.text
        else:
            ET.SubElement(case, "system-out").text = c.text
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
