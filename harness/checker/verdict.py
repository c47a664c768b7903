"""Verdicts: what a checker can say, how verdicts combine, and the exit codes they become.

A checker says ``True`` (valid), ``False`` (a violation, proven), ``"unknown"`` (it could not
decide; never ``True`` when undecided) or ``"not applicable"``: its inputs are ones the system under
test cannot produce (positions, node event logs or an audit of a black box), which is not the same
as inputs that were merely not given (those leave it ``"unknown"``). A run's verdict merges the
checkers that apply.
"""

UNKNOWN = "unknown"
NOT_APPLICABLE = "not applicable"

Verdict = bool | str


def merge(verdicts: list[Verdict]) -> Verdict:
    """False if any is False, else unknown if any is, else True; not-applicable ones ignored."""
    if any(v is False for v in verdicts):
        return False
    if any(v == UNKNOWN for v in verdicts):
        return UNKNOWN
    return True


EXIT_CODES = {True: 0, False: 1, UNKNOWN: 2}
"""The exit status of ``test`` and ``check`` for a run's verdict."""

WORDS = {True: "VALID", False: "INVALID", UNKNOWN: "UNKNOWN", NOT_APPLICABLE: "N/A"}
"""Each verdict as people read it."""
