"""Explicit stacking (DOMAIN.md section 1): what combines with what, and in which order.

Rules
-----
* Two codes combine only if neither is exclusive and each names the other's stacking class in
  ``combines_with``. Nothing is implicit: an empty ``combines_with`` combines with nothing.
* A promotion the POS already applied (``AppliedPromotion``) carries only its class, not its
  rules, so only the code's side can be checked: the code must not be exclusive and must name
  that class. (The POS owns its own promotions; it applied them knowing their rules.)
* Two occurrences of the same code never conflict with each other: how often one transaction
  may use a code is ``limits.uses_per_transaction``'s business, not stacking's.
* Application order: ``StackingRule.order`` (lower first), then the code string, then the scan
  position (only duplicates of one code share a code string). Each later discount is computed
  on what the earlier ones left (``discount.compute``).
* When two codes on one basket do not combine, the one worth more to the customer on the basket
  as it stands (after the POS's promotions, before any other code) wins; on a tie the smaller code
  string wins. Both keys are independent of scan order, so the outcome is too.

The cashier is told in words, e.g. "Stacks with tier discount, not with store sale."
"""

from __future__ import annotations

from collections.abc import Iterable

from edge_agent.domain.promotion import StackingRule

# The classes DOMAIN.md names (store sale, category discount, tier discount, tier multiplier,
# festival promotion). An accepted code reports how it relates to each of them, and to every
# other class present on the basket, so the cashier's answer is complete.
STANDARD_CLASSES: frozenset[str] = frozenset(
    {"store_sale", "category_discount", "tier_discount", "tier_multiplier", "festival_promotion"}
)


def class_words(stacking_class: str) -> str:
    """``"store_sale"`` -> ``"store sale"``."""
    return stacking_class.replace("_", " ").replace("-", " ")


def code_conflict(a: StackingRule, b: StackingRule) -> str | None:
    """Why code ``a`` and code ``b`` cannot both apply, or None if they combine."""
    if a.exclusive:
        return f"{class_words(a.stacking_class)} is exclusive and combines with nothing"
    if b.exclusive:
        return f"{class_words(b.stacking_class)} is exclusive and combines with nothing"
    if b.stacking_class not in a.combines_with:
        return (
            f"{class_words(a.stacking_class)} does not list "
            f"{class_words(b.stacking_class)} among the classes it combines with"
        )
    if a.stacking_class not in b.combines_with:
        return (
            f"{class_words(b.stacking_class)} does not list "
            f"{class_words(a.stacking_class)} among the classes it combines with"
        )
    return None


def pos_conflict(rule: StackingRule, applied_class: str) -> str | None:
    """Why a code with ``rule`` cannot join a POS promotion of ``applied_class``, or None."""
    if rule.exclusive:
        return f"{class_words(rule.stacking_class)} is exclusive and combines with nothing"
    if applied_class not in rule.combines_with:
        return (
            f"{class_words(rule.stacking_class)} does not combine with {class_words(applied_class)}"
        )
    return None


def summary(
    rule: StackingRule, other_classes: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(stacks_with, does_not_stack_with), each sorted.

    ``stacks_with`` is what the rule allows from this code's side. ``does_not_stack_with`` covers
    the standard classes, the code's own class and ``other_classes`` (those on this basket).
    """
    allowed = frozenset() if rule.exclusive else rule.combines_with
    known = set(STANDARD_CLASSES)
    known.add(rule.stacking_class)
    known.update(rule.combines_with)  # named but overruled when the rule is exclusive
    known.update(other_classes)
    return tuple(sorted(allowed)), tuple(sorted(known - allowed))


def _join(words: list[str], conjunction: str) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def describe(stacks_with: tuple[str, ...], does_not_stack_with: tuple[str, ...]) -> str:
    """The sentence for the cashier, e.g. "Stacks with tier discount, not with store sale."."""
    yes = [class_words(c) for c in stacks_with]
    no = [class_words(c) for c in does_not_stack_with]
    if not yes:
        return "Does not stack with any other promotion."
    if not no:
        return f"Stacks with {_join(yes, 'and')}."
    return f"Stacks with {_join(yes, 'and')}, not with {_join(no, 'or')}."
