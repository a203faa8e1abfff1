"""`curate laionet run --config conf/laionet/<preset>.yaml`: the LAIONet stages in order.

Each stage is an ordinary job (`curate laionet label`, ...) whose config is built from this
run's config: every field of the stage's config that this config also has is copied, the
input paths point at the LAION parts or at earlier stages' outputs, and the output goes to
`<work_dir>/<stage name>`. A stage whose output is complete (report written) with exactly
the same stage config is skipped, so a re-run after a failure, or with only a later
stage's settings changed (e.g. the threshold), redoes only what changed.

Adding a stage (e.g. download, arrange): append a `Stage` to `STAGES` naming its job and
where its inputs come from, and add to `RunConfig` the fields a preset should be able to
set (fields it lacks keep the stage job's defaults).
"""
from __future__ import annotations

import dataclasses
import importlib
import time
from dataclasses import dataclass
from typing import Dict, List

from curation.concepts import LEMMA_MAP_HELP, LEMMA_MAPS, check_lemma_map
from curation.errors import ConfigError
from curation.report import start_stage_clock
from curation.queries import QUERY_KEYS, QUERY_TYPES
from jobs.framework.base import Job, main_for
from jobs.framework.config import build_config, opt
from jobs.encoding import EncoderOptions


@dataclass(frozen=True)
class Stage:
    name: str
    #: "module:JOB", or "module:<last command word>" for a module with several JOBS
    job: str
    #: stage config field -> "laion" (this run's LAION input) or the name of an earlier stage
    inputs: Dict[str, str]
    #: where the output's _config.yaml/_report.json live: inside the output directory, or
    #: beside it (`<out>.config.yaml`) for outputs that own their folder (img2dataset's)
    sidecars_inside: bool = True
    #: the stage config field that receives `<work_dir>/<stage name>`
    out_key: str = "out"
    #: part of the default `stages` (download/arrange are asked for explicitly)
    default: bool = True

    def resolve_job(self) -> Job:
        module, _, name = self.job.partition(":")
        mod = importlib.import_module(module)
        found = getattr(mod, name, None)
        return found if isinstance(found, Job) else next(j for j in mod.JOBS if j.command[-1] == name)


STAGES: List[Stage] = [
    Stage("label", "jobs.laionet_label:label", {"laion": "laion"}),
    Stage("subset", "jobs.laionet_label:subset", {"laion": "laion"}),
    Stage("similarity", "jobs.laionet_similarity:JOB", {"subset": "subset"}),
    Stage("filter", "jobs.laionet_filter:JOB", {"similarity": "similarity"}),
    Stage("download", "jobs.laionet_download:JOB", {"metadata": "filter"}, sidecars_inside=False,
          default=False),
    Stage("arrange", "jobs.laionet_arrange:JOB", {"shards": "download", "metadata": "filter"},
          sidecars_inside=False, out_key="target", default=False),
]


@dataclass
class RunConfig(EncoderOptions):
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"laion": "input", "lemma_map": "input", "work_dir": "output_dir"}
    #: values of an input that name a packaged resource, not a path
    PATH_NAMES = {"lemma_map": LEMMA_MAPS}
    laion: str = opt(None, "LAION parquet parts: a directory, glob, file or URI", required=True)
    work_dir: str = opt(None, "directory of all stage outputs (<work_dir>/<stage>)", required=True)
    stages: List[str] = opt([s.name for s in STAGES if s.default], "stages to run, in pipeline order "
                            "(add download,arrange for the images)")
    force: bool = opt(False, "re-run stages even when their complete output exists")
    # label / subset
    matching: str = opt("laionet", "lemma matching rules", choices=("laionet", "normalized"))
    lemma_map: str = opt("standard", LEMMA_MAP_HELP)
    skip_bad_files: bool = opt(False, "skip unreadable parquet files with a warning")
    # similarity
    query_type: str = opt("name_def", "synset query", choices=QUERY_TYPES)
    query_key: str = opt("wnid", "query names the synset (wnid) or the matched lemma", choices=QUERY_KEYS)
    partitions: int = opt(64, "similarity scoring partitions")
    # filter
    threshold: float = opt(0.82, "minimum caption-to-synset similarity")
    inclusive: bool = opt(False, "keep similarity >= threshold instead of >")
    remove_nsfw: bool = opt(False, "drop rows whose NSFW tag is not UNLIKELY")
    # download / arrange (other img2dataset options: `curate laionet download`)
    thread_count: int = opt(64, "download threads per Spark task")
    retries: int = opt(10, "download retries per URL")
    timeout: float = opt(10.0, "seconds before a URL request times out")
    number_sample_per_shard: int = opt(10000, "rows per download shard (one Spark task each)")
    images: bool = opt(True, "arrange writes <work_dir>/arrange/<wnid>/<laion_index>.jpg "
                             "(--no-images: only the success metadata)")
    reencode: bool = opt(False, "arrange re-encodes every image as RGB JPEG with Pillow's defaults, "
                                "as the original arrange_laionet.py (default: the downloaded bytes)")

    def validate(self) -> None:
        check_lemma_map(self.lemma_map)
        known = [s.name for s in STAGES]
        unknown = [s for s in self.stages if s not in known]
        if unknown:
            raise ConfigError("stages", f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(known)}")
        if [s for s in known if s in self.stages] != list(self.stages):
            raise ConfigError("stages", f"list stages in pipeline order: {', '.join(known)}")
        orphans = options_no_stage_takes()
        if orphans:  # a programming error, named before anything runs
            raise RuntimeError(f"laionet run option(s) {', '.join(orphans)} reach no stage: no stage's config "
                               "has a field of that name")
        if "similarity" in self.stages:
            self.encoder_spec().check()

    def outputs(self):
        """Every stage's output (checked against the run's inputs before Spark starts)."""
        return [("work_dir", stage_output(self, s), "output") for s in STAGES if s.name in self.stages]


def stage_output(cfg: RunConfig, stage: Stage) -> str:
    return f"{cfg.work_dir.rstrip('/')}/{stage.name}"


#: RunConfig fields of the run itself (every other field is passed by name to the stages)
RUN_FIELDS = ("laion", "work_dir", "stages", "force")


def options_no_stage_takes(stages: List[Stage] = None) -> List[str]:
    """RunConfig fields that no stage's config has: a stage field renamed without its
    RunConfig twin would otherwise stop being passed without a word."""
    taken = {f.name for s in (STAGES if stages is None else stages) for f in dataclasses.fields(s.resolve_job().config)}
    return [f.name for f in dataclasses.fields(RunConfig) if f.name not in taken and f.name not in RUN_FIELDS]


def stage_config(cfg: RunConfig, stage: Stage, job: Job):
    """The stage's config: shared fields copied from `cfg`, paths from the work dir."""
    ours = {f.name for f in dataclasses.fields(cfg)}
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(job.config)
              if f.name in ours and f.name != stage.out_key and f.name not in RUN_FIELDS}
    for key, source in stage.inputs.items():
        values[key] = cfg.laion if source == "laion" else stage_output(cfg, stage_named(source))
    values[stage.out_key] = stage_output(cfg, stage)
    return build_config(job.config, values, source=f"laionet run stage {stage.name}")


def stage_named(name: str) -> Stage:
    return next(s for s in STAGES if s.name == name)


def run(spark, cfg: RunConfig) -> Dict[str, dict]:
    """Run (or skip) each selected stage; returns {stage: report dict}."""
    from jobs.framework.config import check_paths, config_inputs
    from jobs.io.output import guarded, read_report, stage_complete
    from jobs.framework.progress import set_label

    check_paths(cfg)  # every stage's output against the run's inputs (also done by `execute`)
    results: Dict[str, dict] = {}
    for stage in [s for s in STAGES if s.name in cfg.stages]:
        job = stage.resolve_job()
        stage_cfg = stage_config(cfg, stage, job)
        out = stage_output(cfg, stage)
        if not cfg.force and stage_complete(spark, out, stage_cfg, directory=stage.sidecars_inside):
            report = read_report(spark, out, directory=stage.sidecars_inside)
            print(f"[{stage.name}] skipped: complete output with the same config at {out}")
            results[stage.name] = {**report, "skipped": True}
            continue
        print(f"[{stage.name}] running `curate {job.name}` -> {out}")
        t0 = time.time()
        start_stage_clock()
        set_label(stage.name)
        # the stage's outputs are checked against its inputs and every input of the run
        with guarded(stage_cfg, name=job.name, inputs=config_inputs(cfg) + config_inputs(stage_cfg)):
            report = job.run(spark, stage_cfg)
        results[stage.name] = {**report.to_dict(), "skipped": False, "seconds": round(time.time() - t0, 1)}
    return results


JOB = Job(command=("laionet", "run"), config=RunConfig, run=run,
          help="run the LAIONet stages (label, subset, similarity, filter[, download, arrange]), "
               "skipping finished ones")

if __name__ == "__main__":
    main_for(JOB)
