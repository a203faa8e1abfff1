"""Typed configs: YAML presets, command-line overrides, validation before any work."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import pytest
import yaml

from curation.errors import ConfigError, InputError
from jobs.framework.config import build_config, config_to_yaml, opt, parse_job_args


@dataclass
class DemoConfig:
    laion: str = opt(None, "input parts", required=True)
    matching: str = opt("laionet", "mode", choices=("laionet", "normalized"))
    threshold: float = opt(0.7, "similarity threshold")
    rows: int = opt(10, "rows")
    remove_nsfw: bool = opt(False, "drop NSFW")
    columns: List[str] = opt(["NSFW", "wnid"], "extra columns")
    extra: Dict[str, object] = opt({}, "free options")
    seed: Optional[int] = opt(None, "seed")

    def validate(self):
        if not -1.0 <= self.threshold <= 1.0:
            raise ConfigError("threshold", f"must be within [-1, 1], got {self.threshold}")


def test_defaults_yaml_and_flags_merge_in_order(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("laion: /data/laion\nthreshold: 0.82\nrows: 5\nextra: {retries: 10}\n")
    cfg, run = parse_job_args(DemoConfig, ["--config", str(preset), "--rows", "7", "--remove-nsfw",
                                           "--columns", "a,b", "--master", "local[1]"])
    assert cfg.laion == "/data/laion" and cfg.threshold == 0.82  # from YAML
    assert cfg.rows == 7 and cfg.remove_nsfw is True and cfg.columns == ["a", "b"]  # flags win
    assert cfg.extra == {"retries": 10} and cfg.matching == "laionet"  # default kept
    assert run.master == "local[1]" and run.config_path == str(preset) and not run.dry_run
    # the saved form round-trips to the same config
    assert build_config(DemoConfig, yaml.safe_load(config_to_yaml(cfg))) == cfg


def test_bad_choice_names_key_and_allowed_values():
    with pytest.raises(ConfigError) as e:
        parse_job_args(DemoConfig, ["--laion", "x", "--matching", "fuzzy"])
    assert "matching" in str(e.value) and "laionet, normalized" in str(e.value)


@pytest.mark.parametrize("argv, key", [
    (["--laion", "x", "--rows", "many"], "rows"),
    (["--laion", "x", "--threshold", "high"], "threshold"),
    (["--laion", "x", "--threshold", "1.5"], "threshold"),
    ([], "laion"),
])
def test_wrong_type_or_missing_value_names_the_key(argv, key):
    with pytest.raises(ConfigError) as e:
        parse_job_args(DemoConfig, argv)
    assert e.value.key == key and f"'{key}'" in str(e.value)


def test_unknown_yaml_key_and_missing_preset(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("laion: x\nthreshhold: 0.5\n")
    with pytest.raises(ConfigError) as e:
        parse_job_args(DemoConfig, ["--config", str(preset)])
    assert "threshhold" in str(e.value) and str(preset) in str(e.value)
    with pytest.raises(InputError) as e:
        parse_job_args(DemoConfig, ["--config", str(tmp_path / "missing.yaml")])
    assert "missing.yaml" in str(e.value)


def test_yaml_types_are_checked(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("laion: x\nremove_nsfw: maybe\n")
    with pytest.raises(ConfigError) as e:
        parse_job_args(DemoConfig, ["--config", str(preset)])
    assert e.value.key == "remove_nsfw"
