"""Command line: ``python -m sessrec_course {env,data,course}`` (``make course`` runs ``data`` then ``course``)."""

from __future__ import annotations

import argparse
import logging
import sys


def _cmd_env(args: argparse.Namespace) -> int:
    from sessrec_course.environment import environment_report

    print(environment_report().to_text())
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from sessrec_course.etl.dataset import prepare_default_dataset

    artifacts = prepare_default_dataset()
    print(f"default dataset ({artifacts.profile.name}): {artifacts.root}")
    for key, value in artifacts.manifest.items():
        print(f"  {key}: {value}")
    return 0


def _cmd_course(args: argparse.Namespace) -> int:
    from sessrec_course.course import run_course, summary_table
    from sessrec_course.environment import environment_report

    print(environment_report().to_text(), flush=True)
    print(flush=True)
    results = run_course()
    print()
    print(summary_table(results))
    return 0 if all(r.status == "ok" for r in results) else 1


COMMANDS = {
    "env": (_cmd_env, "print the environment report"),
    "data": (_cmd_data, "generate the default dataset + ETL artefacts for the active profile (reused when present)"),
    "course": (_cmd_course, "execute every notebook into build/ and print the summary table"),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m sessrec_course``."""
    parser = argparse.ArgumentParser(prog="sessrec_course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (func, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text).set_defaults(func=func)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
