"""Top-level keys of Stripe's published example of each object type.

They are copied from ``shared/stripe/fixtures3.json`` (Stripe's MIT-licensed examples) into
``fixture_keys.json`` beside this file, so the suite runs on a fresh clone without shared/;
``test_stored_keys_match_stripes_fixtures`` checks the copy whenever shared/ is present.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
SHARED = HERE.parents[2] / "shared" / "stripe" / "fixtures3.json"
REFERENCE: dict[str, set[str]] = {
    name: set(keys)
    for name, keys in json.loads((HERE / "fixture_keys.json").read_text())["keys"].items()
}
