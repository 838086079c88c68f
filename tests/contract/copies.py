"""Where the project keeps its own copies of the contract it implements, and the external original.

The contract (RULES.md, the Spaces schema in draft 2020-12 and the worked examples) was handed to
the project as a folder beside the repository. The project keeps verbatim copies so that a clone
stands alone: RULES.md in docs/contracts/, the 2020-12 schema and the examples here as test
fixtures (the package ships its draft-07 translation in planstream/domain/contracts/). Tests read
only these. ``external()`` is the original folder, and only when PLANSTREAM_SHARED_CONTRACTS names
it: then test_copies.py checks that the copies have not drifted from it.
"""

import os
from pathlib import Path
from typing import Final

__all__ = ["EXAMPLES", "EXTERNAL_ENV", "ORIGINAL_SCHEMA", "ROOT", "RULES_MD", "external"]

ROOT: Final = Path(__file__).resolve().parents[2]
EXAMPLES: Final = ROOT / "tests" / "contract" / "examples"
ORIGINAL_SCHEMA: Final = ROOT / "tests" / "contract" / "spaces-v1.schema.json"
RULES_MD: Final = ROOT / "docs" / "contracts" / "RULES.md"
EXTERNAL_ENV: Final = "PLANSTREAM_SHARED_CONTRACTS"


def external() -> Path | None:
    """The external contract folder named by PLANSTREAM_SHARED_CONTRACTS, or None when unset."""
    value = os.environ.get(EXTERNAL_ENV, "").strip()
    return Path(value).expanduser() if value else None
