"""The register of deliberately broken fakes, and which conformance tests must catch each."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["MUTANTS", "Mutant", "breaks"]

C = TypeVar("C", bound=type[Any])


@dataclass(frozen=True)
class Mutant:
    """A broken fake: the suite it is put through, its harness, and the tests that must fail."""

    name: str
    suite: type[Any]
    harness: Callable[[], Any]
    catches: tuple[str, ...]


MUTANTS: list[Mutant] = []


def breaks(suite: type[Any], harness: Callable[[Any], Any], *catches: str) -> Callable[[C], C]:
    """Register the decorated fake subclass: ``harness(cls)`` runs it through ``suite``, and
    each test named in ``catches`` must fail on it."""

    def register(kind: C) -> C:
        MUTANTS.append(Mutant(kind.__name__, suite, lambda: harness(kind), catches))
        return kind

    return register
