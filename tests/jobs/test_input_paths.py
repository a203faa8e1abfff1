"""Every input path option of every job (found from the job registry and the config
dataclasses, so a new job is covered without a change here): a missing local path is one
error line naming the option and the path, exit 2, before Spark starts (in-process: a
Spark session here would make the test slow, and none is created)."""
from dataclasses import fields

import pytest

from jobs.framework.cli import discover, main
from curation.errors import ConfigError, CurationError
from jobs.framework.config import parse_job_args, path_kind

#: an output path must often end with its format's suffix (validated with the config)
_SUFFIXES = ("", ".tsv", ".txt", ".parquet", ".json", ".png", ".html")


def _flag(f) -> str:
    return "--" + f.name.replace("_", "-")


def _cases():
    for cmd, job in sorted(discover().items()):
        made = getattr(job.config, "MADE_IF_MISSING", ())
        for f in fields(job.config):
            if path_kind(job.config, f.name) in ("input", "input_root") and f.name not in made:
                yield pytest.param(cmd, f.name, id=f"{' '.join(cmd)} {_flag(f)}")


@pytest.mark.parametrize("command, field", list(_cases()))
def test_a_missing_input_is_one_line_naming_option_and_path(command, field, tmp_path, capsys, monkeypatch):
    import jobs.framework.session as session

    def no_spark(*args, **kwargs):
        raise AssertionError("a Spark session was started for a missing input")

    monkeypatch.setattr(session, "spark_session", no_spark)
    job = discover()[command]
    # the other options' own checks (a model, a count) are not what this test is about
    monkeypatch.setattr(job.config, "validate", lambda self: None, raising=False)
    missing = str(tmp_path / "nowhere" / f"{field}.data")
    existing = tmp_path / "present"
    existing.mkdir()
    args = []
    outputs = []
    for f in fields(job.config):
        kind = path_kind(job.config, f.name)
        if f.name == field:
            args += [_flag(f), missing]
        elif kind in ("output", "output_dir") and f.metadata.get("required"):
            outputs.append(f)
        elif kind in ("input", "input_root") and f.metadata.get("required"):
            args += [_flag(f), str(existing)]
    for f in outputs:  # the first suffix the config accepts
        for suffix in _SUFFIXES:
            value = [_flag(f), str(tmp_path / f"out_{f.name}{suffix}")]
            try:
                parse_job_args(job.config, args + value)
            except ConfigError as e:
                if e.key == f.name:
                    continue
            except (CurationError, SystemExit):  # the missing input itself, reported below
                pass
            break
        args += value
    assert main(list(command) + args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: ") and missing in line, line
    assert _flag(next(f for f in fields(job.config) if f.name == field)) in line or f"'{field}'" in line, line
