"""Typed job configs: a dataclass per job, YAML presets, command-line overrides.

A job's config is a plain dataclass whose fields are declared with `opt(...)`:

    @dataclass
    class LabelConfig:
        laion: str = opt(None, "LAION parquet parts (dir, glob or URI)", required=True)
        matching: str = opt("laionet", "matching mode", choices=("laionet", "normalized"))
        def validate(self): ...   # optional, raise ConfigError(key, msg)

`parse_job_args(cls, argv)` builds the argparse parser from the fields, merges
defaults < YAML preset (`--config`) < command line, coerces and validates every value
*before* Spark starts, and returns the config plus the run options (`--master`,
`--dry-run`, `--debug`).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from curation.errors import ConfigError, InputError


#: `opt(kind=...)`: a path the job reads; a path it writes (replaced as a whole); a folder
#: it writes files into or adds to (e.g. `--out-dir`, arrange's `--target`)
#: input: a file/folder/glob the job reads; input_root: a folder the job reads from that its
#: own outputs may live in (a dataset root: checked to exist, not against the outputs);
#: output / output_dir: what the job writes
PATH_KINDS = ("input", "input_root", "output", "output_dir")


def opt(default: Any = None, help: str = "", *, choices: Optional[Sequence[Any]] = None,
        required: bool = False, flag: Optional[str] = None, cli: bool = True,
        kind: Optional[str] = None) -> Any:
    """Declare a config field. `choices` restricts the value; `required` means no default;
    `kind` marks a path (one of PATH_KINDS): outputs are checked against inputs."""
    assert kind is None or kind in PATH_KINDS, kind
    meta = {"help": help, "choices": tuple(choices) if choices else None,
            "required": required, "flag": flag, "cli": cli, "kind": kind}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunOptions:
    """Options of every job that are not part of its recorded config."""
    master: Optional[str] = None
    dry_run: bool = False
    debug: bool = False
    config_path: Optional[str] = None
    #: replace existing outputs this job did not write
    overwrite: bool = False
    #: no live progress line (it is also off when stderr is not a terminal)
    quiet: bool = False


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _base_type(tp: Any) -> Tuple[Any, bool]:
    """(inner type, optional?) for `Optional[X]` / `X | None`."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def coerce_value(key: str, value: Any, tp: Any) -> Any:
    """Coerce a YAML/CLI value to the field's type; raise ConfigError naming the key."""
    inner, optional = _base_type(tp)
    if value is None:
        if optional or inner is Any:
            return None
        raise ConfigError(key, f"must be a {_type_name(inner)}, got null")
    origin = typing.get_origin(inner)
    if inner is Any:
        return value
    if inner is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(key, f"must be true or false, got {value!r}")
    if inner is int:
        if isinstance(value, bool):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(key, f"must be an integer, got {value!r}")
    if inner is float:
        if isinstance(value, bool):
            raise ConfigError(key, f"must be a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(key, f"must be a number, got {value!r}")
    if inner is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(key, f"must be a string, got {value!r}")
    if origin in (list, List) or inner is list:
        (item_tp,) = typing.get_args(inner) or (Any,)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list, got {value!r}")
        return [coerce_value(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if origin in (dict, Dict) or inner is dict:
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as e:
                raise ConfigError(key, f"must be a mapping (YAML/JSON), got {value!r}: {e}")
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a mapping, got {value!r}")
        return dict(value)
    return value


def config_keys(cls) -> List[str]:
    return [f.name for f in fields(cls)]


def own_fields_first(cls):
    """`fields(cls)` with the class's own fields before those it inherits from shared option
    groups (e.g. `jobs.encoding.EncoderOptions`): a job's --help starts with its own inputs."""
    own = set(vars(cls).get("__annotations__", {}))
    found = fields(cls)
    return [f for f in found if f.name in own] + [f for f in found if f.name not in own]


def build_config(cls, values: Dict[str, Any], source: str = "config"):
    """Build and validate a config object from a {key: value} mapping."""
    known = {f.name: f for f in fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: Dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in known:
            raise ConfigError(raw_key, f"unknown key in {source}; known keys: {', '.join(sorted(known))}")
        kwargs[key] = coerce_value(key, value, hints[key])
    for name, f in known.items():
        if f.metadata.get("required") and kwargs.get(name, f.default) in (None, MISSING):
            raise ConfigError(name, f"is required (set {_flag(f)} or '{name}:' in the YAML preset)")
        choices = f.metadata.get("choices")
        if choices is not None and name in kwargs:
            vals = kwargs[name] if isinstance(kwargs[name], list) else [kwargs[name]]
            for v in vals:
                if v is not None and v not in choices:
                    raise ConfigError(name, f"got {v!r}; allowed values: {', '.join(map(str, choices))}")
    cfg = cls(**kwargs)
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        validate()
    return cfg


def load_yaml(path: str) -> Dict[str, Any]:
    if not os.path.exists(path):
        raise InputError(f"config file not found: {path}")
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as e:
        raise InputError(f"config file {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"config file {path} must hold a mapping of keys to values")
    return data


def make_parser(cls, prog: str, description: str = "") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     argument_default=argparse.SUPPRESS)
    parser.add_argument("--config", dest="_config_path", metavar="YAML",
                        help="YAML preset (keys are this job's options); command-line flags override it")
    parser.add_argument("--master", dest="_master", help="Spark master when no session is active (default local[*])")
    parser.add_argument("--dry-run", dest="_dry_run", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--debug", dest="_debug", action="store_true", help="show tracebacks and Spark's INFO logs")
    parser.add_argument("--overwrite", dest="_overwrite", action="store_true",
                        help="replace an existing output even when this job did not write it")
    parser.add_argument("--quiet", dest="_quiet", action="store_true",
                        help="no live progress line on the terminal")
    hints = typing.get_type_hints(cls)
    for f in own_fields_first(cls):
        if not f.metadata.get("cli", True):
            continue
        inner, _ = _base_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        choices = f.metadata.get("choices")
        if choices:
            help_text += f" (one of: {', '.join(map(str, choices))})"
        default = None if f.default is MISSING else f.default
        if default not in (None, MISSING) and default != "":
            help_text += f" [default: {default}]"
        if not _flag(f).startswith("-"):  # a positional argument (opt(..., flag="name"))
            parser.add_argument(_flag(f), metavar=f.name.upper(), nargs="?", help=help_text)
        elif inner is bool:
            parser.add_argument(_flag(f), dest=f.name, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(_flag(f), dest=f.name, metavar=f.name.upper(), help=help_text)
    return parser


def parse_job_args(cls, argv: Sequence[str], prog: str = "curate", description: str = ""):
    """Parse argv into (config, RunOptions); defaults < --config YAML < flags."""
    parser = make_parser(cls, prog, description)
    ns = vars(parser.parse_args(list(argv)))
    run = RunOptions(master=ns.pop("_master", None), dry_run=ns.pop("_dry_run", False),
                     debug=ns.pop("_debug", False), config_path=ns.pop("_config_path", None),
                     overwrite=ns.pop("_overwrite", False),
                     quiet=ns.pop("_quiet", False))
    values: Dict[str, Any] = {}
    source = "command line"
    if run.config_path:
        values.update(load_yaml(run.config_path))
        source = run.config_path
    values.update(ns)
    return build_config(cls, values, source=source), run


def path_kind(cls, name: str) -> Optional[str]:
    """The PATH_KINDS entry of field `name`: `opt(kind=...)` or the class's `PATHS` mapping
    (e.g. `PATHS = {"laion": "input", "out": "output"}`)."""
    f = {f.name: f for f in fields(cls)}[name]
    return f.metadata.get("kind") or getattr(cls, "PATHS", {}).get(name)


def _paths_of(cfg, kinds) -> List[Tuple[str, str]]:
    out = []
    for f in fields(cfg):
        if path_kind(type(cfg), f.name) in kinds:
            value = getattr(cfg, f.name)
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                if v not in (None, ""):
                    out.append((f.name, str(v)))
    return out


def config_inputs(cfg) -> List[Tuple[str, str]]:
    """(option, path) of every input path of a job config (fields declared kind="input")."""
    return _paths_of(cfg, ("input",))


def checked_inputs(cfg) -> List[Tuple[str, str]]:
    """(field, path) of the inputs that must exist before a job runs: `config_inputs` and the
    dataset roots (kind `input_root`), without the values that name a packaged resource
    instead of a path (a config's `PATH_NAMES = {field: names}`, e.g. the lemma maps
    `standard`, `laionet`) and without the fields the job makes itself when missing
    (`MADE_IF_MISSING = (field, ...)`)."""
    names = getattr(type(cfg), "PATH_NAMES", {})
    made = getattr(type(cfg), "MADE_IF_MISSING", ())
    return [(f, p) for f, p in _paths_of(cfg, ("input", "input_root")) if f not in made and p not in names.get(f, ())]


def output_fields(cfg) -> List[Tuple[str, str]]:
    """(option, path) of the output fields (kind "output" or "output_dir")."""
    return _paths_of(cfg, ("output", "output_dir"))


def check_paths(cfg) -> None:
    """Before Spark starts: no output of `cfg` may overlap one of its inputs (ConfigError,
    one line naming both options and paths). A config may name more outputs (derived
    ones, the stages of `laionet run`) with `outputs()` -> [(option, path, kind)]."""
    from curation.paths import overlap

    outputs = [(name, path, path_kind(type(cfg), f.name)) for f in fields(cfg)
               if path_kind(type(cfg), f.name) in ("output", "output_dir") for name, path in _paths_of_field(cfg, f)]
    extra = getattr(cfg, "outputs", None)
    if extra is not None:
        outputs += list(extra())
    for name, path, kind in outputs:
        for in_name, in_path in config_inputs(cfg):
            rel = overlap(path, in_path)
            # a folder we add files to may hold an input (files are written beside it)
            if rel and not (kind == "output_dir" and rel == "contains"):
                raise InputError(overlap_message(name, path, in_name, in_path, rel))


def overlap_message(out_option: str, out: str, in_option: str, in_path: str, relation: str) -> str:
    """The one line for an output that is ("equal"), is "inside" or "contains" an input."""
    words = {"equal": "is", "inside": "is inside", "contains": "contains"}[relation]
    return (f"output --{out_option.lstrip('-').replace('_', '-')} {out} {words} input "
            f"--{in_option.lstrip('-').replace('_', '-')} {in_path}: the job would replace or delete its "
            "own input; choose an output path outside the input")


def _paths_of_field(cfg, f) -> List[Tuple[str, str]]:
    value = getattr(cfg, f.name)
    return [(f.name, str(v)) for v in (value if isinstance(value, (list, tuple)) else [value]) if v not in (None, "")]


def check_roots(cfg, *keys: str) -> None:
    """ConfigError for a root that is written into every file path of a TSV and cannot be
    (`curation.paths.unsafe_root`: a tab, line break or other control character, or a
    component beyond the file-system name limit)."""
    from curation.paths import unsafe_root

    for key in keys:
        value = getattr(cfg, key)
        why = value is not None and unsafe_root(value)
        if why:
            raise ConfigError(key, f"{value[:80]!r} cannot start a file path in a TSV ({why})")


def config_to_dict(cfg) -> Dict[str, Any]:
    """The config as a dict, the job's own fields first (the order of --help and the sidecars)."""
    values = dataclasses.asdict(cfg)
    return {f.name: values[f.name] for f in own_fields_first(type(cfg))}


def config_to_yaml(cfg) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)
