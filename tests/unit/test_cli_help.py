"""Every command of ``walrus-harness`` says what it does and what each of its options means."""

import argparse

from harness.cli import parser


def _commands(p: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser, its help line) for every command and subcommand."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            lines = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, lines.get(name)
                yield from _commands(sub, (*path, name))


def test_every_command_and_option_has_its_help():
    commands = list(_commands(parser()))
    assert {" ".join(path) for path, _, _ in commands} >= {
        "test",
        "campaign",
        "check",
        "gate",
        "bench storage",
        "bench compare",
        "serve",
        "replay",
        "shrink",
    }
    missing = []
    for path, sub, line in commands:
        if not line:
            missing.append(" ".join(path))
        for action in sub._actions:
            if action.help is None and not isinstance(action, argparse._SubParsersAction):
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
        assert sub.format_help()
    assert missing == []
