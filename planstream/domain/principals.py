"""Who is calling: a token's subject and roles, and what each role may do (no I/O here)."""

from dataclasses import dataclass
from typing import Final

__all__ = ["OPERATOR", "SUBJECT_PATTERN", "Principal"]

OPERATOR: Final = "operator"
"""The role that reviews blocked runs, reads every run and handles dead letters."""

SUBJECT_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._@:|+-]{0,254}$"
"""What a token's ``sub`` may be (UUIDs, e-mail addresses, ``provider|id``): whole, no spaces."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: ``subject`` is the token's ``sub``, the owner of what it makes."""

    subject: str
    roles: frozenset[str] = frozenset()

    @property
    def is_operator(self) -> bool:
        return OPERATOR in self.roles

    def may_see(self, owner: str | None) -> bool:
        """A user sees what it owns; an operator sees everything (ownerless rows included)."""
        return self.is_operator or (owner is not None and owner == self.subject)
