"""The `Job` description shared by the CLI and `spark-submit jobs/<file>.py`."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Tuple, Union

from curation.errors import CurationError
from curation.report import start_stage_clock


@dataclass(frozen=True)
class Job:
    #: words after `curate`, e.g. ("laionet", "label")
    command: Tuple[str, ...]
    config: type
    #: run(spark, cfg) for Spark jobs, run(None, cfg) when needs_spark is False;
    #: may return a value (printed by nothing; used by tests and `laionet run`)
    run: Callable[[Any, Any], Any]
    help: str = ""
    #: whether the job gets a Spark session: a bool, or a function of the validated config
    #: (a job that needs Spark only for some inputs, e.g. Hadoop's file systems)
    needs_spark: Union[bool, Callable[[Any], bool]] = True

    @property
    def name(self) -> str:
        return " ".join(self.command)


def execute(job: Job, argv: Sequence[str], prog: Optional[str] = None) -> int:
    """Parse, validate, (dry-run or) run a job; turn user errors into one-line messages."""
    from jobs.framework.config import check_paths, config_to_yaml, parse_job_args
    from jobs.io.output import check_inputs, check_known_outputs, guarded

    debug = "--debug" in argv
    try:
        cfg, run = parse_job_args(job.config, argv, prog=prog or f"curate {job.name}", description=job.help)
        if run.dry_run:
            sys.stdout.write(config_to_yaml(cfg))
            return 0
        check_paths(cfg)  # outputs that overlap inputs: refused before Spark starts
        needs_spark = job.needs_spark(cfg) if callable(job.needs_spark) else job.needs_spark
        check_inputs(None, cfg, local_only=needs_spark)  # missing inputs: one line, before Spark starts
        t0 = time.time()
        start_stage_clock()
        from jobs.framework.progress import set_quiet

        set_quiet(run.quiet)
        with guarded(cfg, name=job.name, overwrite=run.overwrite):  # every output is checked
            check_known_outputs(cfg)  # local outputs of the user's: refused before Spark starts
            if needs_spark:
                from jobs.framework.progress import progress
                from jobs.framework.session import spark_session

                with spark_session(run.master, app_name=f"curate {job.name}", debug=run.debug) as spark:
                    check_master_reachable(spark)
                    check_inputs(spark, cfg)  # inputs on other file systems, through the session
                    with progress(spark, job.name):
                        job.run(spark, cfg)
            else:
                job.run(None, cfg)
        print(f"[{job.name}] done in {time.time() - t0:.1f}s")
        return 0
    except CurationError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def check_master_reachable(spark) -> None:
    """On a cluster, fail fast with one line when executors cannot run our code (the master
    itself was probed before the session was created; see jobs/framework/session.py)."""
    from jobs.framework.session import check_executors

    check_executors(spark)


def main_for(jobs: "Job | Sequence[Job]") -> None:
    """Entry for `spark-submit jobs/<file>.py [job] ...` and `python -m jobs.<file> ...`.

    A module with several jobs takes the job's last command word first, e.g.
    `spark-submit jobs/laionet_label.py subset --laion ...`.
    """
    argv = sys.argv[1:]
    if isinstance(jobs, Job):
        sys.exit(execute(jobs, argv, prog=sys.argv[0]))
    by_word = {job.command[-1]: job for job in jobs}
    if argv and argv[0] in by_word:
        sys.exit(execute(by_word[argv[0]], argv[1:], prog=f"{sys.argv[0]} {argv[0]}"))
    print(f"usage: {sys.argv[0]} {{{','.join(by_word)}}} [options]", file=sys.stderr)
    sys.exit(2)
