"""What the tests of every layer share: paths, the tiny CLIP, the standalone cluster, the
long-lived Spark applications, and helpers/fixtures of a subject tested in several layers."""
import os

#: the repository root (the tests live in tests/<layer>/)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(REPO, "conf")
