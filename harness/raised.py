"""Where an exception was raised, in one line for people: the frame of the project's own code
nearest the raise (the library frames below it say less about what to mend); and the exceptions
inside the (nested) exception groups trio's nurseries raise."""

import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root: frames under it in these packages are the project's own."""
PACKAGES = ("harness", "nemesis", "walrus", "losefs")


def raised_at(exc: BaseException) -> str:
    """``function (path:line)`` of the innermost frame of ours in ``exc``'s traceback, else of
    its innermost frame; empty without a traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    ours = [f for f in frames if _relative(f.filename).parts[:1] in {(p,) for p in PACKAGES}]
    frame = (ours or frames)[-1]
    return f"{frame.name} ({_relative(frame.filename)}:{frame.lineno})"


def _relative(filename: str) -> Path:
    path = Path(filename)
    try:
        return path.resolve().relative_to(ROOT)
    except ValueError:
        return Path(path.name)


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, as trio's nurseries raise them; ``exc``
    itself if it is none."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]
