"""docs/errors.md names real tests: every `tests/<file>.py[::test]` it cites exists."""

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_every_cited_test_exists():
  text = (REPO / "docs" / "errors.md").read_text()
  cited, current = [], None
  for ref in re.findall(r"`((?:tests/[\w/]+\.py)?(?:::\w+)?)`", text):
    path, _, name = ref.partition("::")
    current = path or current
    cited.append((current, name))
  assert len(cited) >= 15
  for path, name in cited:
    source = (REPO / path).read_text()
    assert not name or re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} not found"
