"""jaxml.models.registry's structure: every family's names are registered once, and jaxml.models
and jaxml.spaces import in either order (no import cycle; each in a fresh interpreter, since this
one has both imported already). Names, defaults and field errors: test_model_registry.py."""

import pathlib
import subprocess
import sys

import pytest

from jaxml.models import fishnet, mobilenet, resnet, shufflenet, space_networks, wrn
from jaxml.models.registry import MODEL_NAMES, SPACE_MODELS

FAMILIES = (fishnet, mobilenet, resnet, shufflenet, space_networks, wrn)


def test_every_family_name_is_registered_once():
  names = [n for family in FAMILIES for n in family.MODEL_FIELDS]
  assert sorted(names) == sorted(MODEL_NAMES)
  assert SPACE_MODELS == ("nb201", "darts_cells", "econas_cells", "shufflenet_spos")


@pytest.mark.parametrize(
  "first,second",
  [
    ("jaxml.spaces", "jaxml.models"),
    ("jaxml.models", "jaxml.spaces"),
    ("jaxml.spaces.crnas", "jaxml.models"),
  ],
)
def test_import_order(first, second):
  # The last line builds a search-space network: the registry imports jaxml.spaces lazily.
  code = (
    f"import {first}\nimport {second}\nimport jaxml.models\njaxml.models.get_model('nb201', 10)"
  )
  root = pathlib.Path(__file__).resolve().parents[2]  # this checkout's jaxml, not an installed one
  proc = subprocess.run(
    [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
  )
  assert proc.returncode == 0, proc.stderr
