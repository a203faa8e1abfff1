"""longtail-curation: Spark jobs that build the curated image-text datasets (LAIONet,
ImageNet-Captions variants, YFCC15M-Cls/CC12M-Cls) used to study CLIP under long-tailed data."""
import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))


def requirements():
    with open(os.path.join(HERE, "requirements.txt")) as fh:
        reqs = [ln.split("#")[0].strip() for ln in fh]
    # test/notebook/packing tools are development extras, not runtime needs
    dev = {"pytest", "nbclient", "nbformat", "ipykernel", "venv-pack"}
    return [r for r in reqs if r and r.split(">")[0].split("=")[0].split("<")[0] not in dev]


setup(
    name="longtail-curation",
    version="0.1.0",
    description=" ".join(__doc__.split()),
    # curation/data holds the packaged concept tables and lemma maps (no Python code), and in
    # study_freqs/ the original project's class-frequency files (`_ori`, counts) for `curate report`
    packages=["curation", "curation.data", "curation.data.study_freqs", "curation.samples", "udfs", "jobs", "jobs.framework", "jobs.io"],
    package_data={"curation.data": ["*"], "curation.data.study_freqs": ["*_ori.txt"], "jobs.framework": ["*.properties"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=requirements(),
    # remote: fsspec backends for what the Python workers read and write on s3a:// and gs://
    # (udfs/files.py; docs/cluster.md)
    extras_require={"dev": ["pytest", "nbclient", "nbformat", "ipykernel", "venv-pack"], "remote": ["s3fs", "gcsfs"]},
    entry_points={"console_scripts": ["curate=jobs.framework.cli:main"]},
)
