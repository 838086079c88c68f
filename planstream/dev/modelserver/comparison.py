"""The scripted request comparison: room counts the request names against the plan's counts.

The request text is data: it is only searched for "<number> <room>" phrases, never obeyed.
"""

import re
from typing import Final

from planstream.domain.spaces import CriticalGroup, SpacesDocument

__all__ = ["mismatches", "requested_counts"]

_NUMBERS: Final = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_NUMBER = r"\d{1,2}|" + "|".join(_NUMBERS)
_PHRASE: Final = re.compile(
    rf"\b({_NUMBER})[\s-]+(?:(?!(?:{_NUMBER})\b)[a-z]+[\s-]+){{0,2}}?(bedroom|bathroom|kitchen)s?\b",
    re.IGNORECASE,
)
_SEVERITY: Final[dict[CriticalGroup, str]] = {
    "bedroom": "high",
    "bathroom": "high",
    "kitchen": "medium",
}


def requested_counts(request_text: str) -> dict[CriticalGroup, int]:
    """The first count the text gives for each of bedrooms, bathrooms and kitchens."""
    counts: dict[CriticalGroup, int] = {}
    for match in _PHRASE.finditer(request_text):
        number, noun = match.group(1).lower(), match.group(2).lower()
        group: CriticalGroup = (
            "bedroom" if noun == "bedroom" else ("bathroom" if noun == "bathroom" else "kitchen")
        )
        counts.setdefault(group, _NUMBERS.get(number) or int(number))
    return counts


def mismatches(request_text: str, document: SpacesDocument | None) -> list[dict[str, str]]:
    """One mismatch per counted room kind the plan has a different number of.

    Rooms count as RULES.md's critical groups do (a studio is a bedroom, and a kitchen when it
    lists a kitchen fixture). Without a valid document there is nothing to compare.
    """
    if document is None:
        return []
    found = []
    for group, wanted in requested_counts(request_text).items():
        planned = sum(space.counts_for(group) for space in document.spaces)
        if planned != wanted:
            found.append(
                {
                    "description": f"the request asks for {wanted} {group}"
                    f"{'' if wanted == 1 else 's'}, the plan has {planned}",
                    "severity": _SEVERITY[group],
                }
            )
    return found
