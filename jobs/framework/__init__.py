"""The framework every job runs in: `config` (dataclass configs: defaults < --config YAML <
flags, one-line errors), `base` (`Job`, `execute`, `main_for`: a CurationError becomes one
line and exit 2), `cli` (`curate`, jobs discovered from the modules of `jobs`), `session`
(Spark sessions, the cluster checks) and `progress` (the live progress line)."""
