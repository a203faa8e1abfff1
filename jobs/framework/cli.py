"""The `curate` command: `curate <group> <job> [options]`, e.g. `curate laionet label --help`.

Jobs are discovered from the modules of the `jobs` package (each defines `JOB` or `JOBS`),
so adding a job needs no change here. Module imports must stay cheap: heavy libraries
(torch, open_clip, nltk) are imported inside the job's run function.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Dict, List, Sequence, Tuple

from jobs.framework.base import Job, execute

#: modules of `jobs` that hold no job: shared steps and options, and the sub-packages
_NOT_JOBS = {"classes", "encoding", "framework", "io"}


def discover() -> Dict[Tuple[str, ...], Job]:
    import jobs

    found: Dict[Tuple[str, ...], Job] = {}
    for mod in pkgutil.iter_modules(jobs.__path__):
        if mod.name in _NOT_JOBS or mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"jobs.{mod.name}")
        for job in ([getattr(module, "JOB")] if hasattr(module, "JOB") else []) + list(getattr(module, "JOBS", [])):
            if job.command in found:
                raise RuntimeError(f"two jobs claim 'curate {job.name}'")
            found[job.command] = job
    return found


def _usage(registry: Dict[Tuple[str, ...], Job]) -> str:
    lines = ["usage: curate <command> [options]   (curate <command> --help for its options)", "", "commands:"]
    for cmd in sorted(registry):
        job = registry[cmd]
        lines.append(f"  {' '.join(cmd):<28} {job.help.splitlines()[0] if job.help else ''}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    registry = discover()
    # the longest registered command that prefixes argv wins ("freq plot" over "freq")
    words: List[str] = []
    for w in argv:
        if w.startswith("-"):
            break
        words.append(w)
    for n in range(len(words), 0, -1):
        cmd = tuple(words[:n])
        if cmd in registry:
            return execute(registry[cmd], argv[n:])
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(registry))
        return 0
    print(f"error: unknown command 'curate {' '.join(words)}'\n\n{_usage(registry)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
