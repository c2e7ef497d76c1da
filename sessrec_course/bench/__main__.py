"""``python -m sessrec_course.bench quality|peers``: run a benchmark, write JSON and a docs/benchmarks.md section."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from sessrec_course.paths import build_dir, project_root

QUALITY_HEADING = "Quality on public splits"
PEERS_HEADING = "Peers: the course beside NVTabular and Transformers4Rec"


def _command_line(argv: list[str]) -> str:
    return "python -m sessrec_course.bench " + " ".join(shlex.quote(a) for a in argv)


def _cmd_quality(args: argparse.Namespace, argv: list[str]) -> int:
    from sessrec_course.bench.quality import default_split_folders, run_quality
    from sessrec_course.bench.report import (
        describe_machine,
        machine_description,
        quality_markdown,
        update_section,
        write_json,
    )

    folders = [Path(f) for f in args.splits] if args.splits else default_split_folders()
    missing = [str(f) for f in folders if not (f / "train_sessions.txt").is_file()]
    if missing and not args.splits:
        print(f"skipped: no benchmark splits at {', '.join(missing)} (shared data missing)")
        return 0
    if missing:
        raise SystemExit(f"not a benchmark split folder (train_sessions.txt + test.tsv): {', '.join(missing)}")
    machine = machine_description()
    results = []
    for folder in folders:
        results.append(run_quality(folder, models=args.models, baselines=args.baselines,
                                   time_budget_s=args.time_budget, config_path=args.config, progress=args.progress))
        print(quality_markdown(results[-1]), "\n", flush=True)
    command = _command_line(argv)
    write_json(args.json, {"command": command, "machine": machine, "results": results})
    print(f"raw results: {args.json}")
    if args.markdown:
        body = [f"Command: `{command}` (raw results: `{args.json}`).", "",
                f"Machine: {describe_machine(machine)}.", ""]
        if args.note:
            body += [args.note, ""]
        body += [quality_markdown(r) + "\n" for r in results]
        update_section(args.markdown, QUALITY_HEADING, "\n".join(body))
        print(f"updated section '{QUALITY_HEADING}' of {args.markdown}")
    return 0


def _cmd_peers(args: argparse.Namespace, argv: list[str]) -> int:
    from sessrec_course.bench.peers import peers_markdown, run_peers
    from sessrec_course.bench.report import describe_machine, machine_description, update_section, write_json

    machine = machine_description()
    result = run_peers(n_events=args.events, venv=Path(args.venv), workdir=Path(args.workdir), epochs=args.epochs,
                       hidden_size=args.hidden_size, max_length=args.max_length, batch_size=args.batch_size,
                       skip_merlin=args.skip_merlin)
    command = _command_line(argv)
    write_json(args.json, {"command": command, "machine": machine, **result})
    text = peers_markdown(result)
    print(text)
    if args.markdown:
        body = [f"Command: `{command}` (raw results: `{args.json}`).", "", f"Machine: {describe_machine(machine)}.", ""]
        if args.note:
            body += [args.note, ""]
        update_section(args.markdown, PEERS_HEADING, "\n".join([*body, text]))
        print(f"updated section '{PEERS_HEADING}' of {args.markdown}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m sessrec_course.bench``."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_course.bench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality", help="baselines + torch models on benchmark split folders")
    q.add_argument("splits", nargs="*", help="split folders (train_sessions.txt + test.tsv); default: shared splits")
    q.add_argument("--models", nargs="*", default=None, help="neural presets (default: gru transformer mlp)")
    q.add_argument("--baselines", nargs="*", default=None, help="baseline names (default: all)")
    q.add_argument("--time-budget", type=float, default=None,
                   help="seconds for all neural models of one split (default: the config's; 0 = none)")
    q.add_argument("--config", default=None, help="TOML config (default: benchmarks/configs/<split>.toml)")
    q.add_argument("--json", default=str(build_dir() / "bench" / "quality.json"))
    q.add_argument("--markdown", default=None, help="markdown file whose quality section is rewritten")
    q.add_argument("--note", default=None, help="a paragraph added to the markdown section")
    q.add_argument("--progress", action="store_true", help="progress bars")
    p = sub.add_parser("peers", help="course vs NVTabular CPU + Transformers4Rec XLNet on the same generated events")
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--venv", default=str(project_root() / ".venv-merlin"))
    p.add_argument("--workdir", default=str(build_dir() / "bench" / "peers"))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--skip-merlin", action="store_true", help="course side only (no Merlin venv)")
    p.add_argument("--json", default=str(build_dir() / "bench" / "peers.json"))
    p.add_argument("--markdown", default=None, help="markdown file whose peers section is rewritten")
    p.add_argument("--note", default=None, help="a paragraph added to the markdown section")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark CLI; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    handler = _cmd_quality if args.command == "quality" else _cmd_peers
    return handler(args, argv)


if __name__ == "__main__":
    sys.exit(main())
