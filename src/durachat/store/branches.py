"""The message tree's arithmetic for deleting a branch, as pure functions.

Messages form a tree through `parent_id`; the shown thread is the path from the
root to the conversation's `current_leaf_id`. Deleting a message deletes its
subtree; when the current leaf was in it, the leaf moves to the deepest newest
leaf under the nearest remaining sibling (the older one first, as `<` in the UI
would show), else to the parent, else to the newest remaining root's branch.

No I/O here: `store/sql.py` reads the rows and writes the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Node:
    """What the tree arithmetic needs of a message."""

    id: str
    parent_id: str | None
    created_at: str


def children_of(nodes: Iterable[Node]) -> dict[str | None, list[Node]]:
    """Children per parent id, oldest first (`created_at`, then id)."""
    found: dict[str | None, list[Node]] = {}
    for node in sorted(nodes, key=lambda n: (n.created_at, n.id)):
        found.setdefault(node.parent_id, []).append(node)
    return found


def subtree(children: dict[str | None, list[Node]], root_id: str) -> set[str]:
    """`root_id` and every message below it."""
    found, stack = set(), [root_id]
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(child.id for child in children.get(current, ()))
    return found


def deepest_leaf(children: dict[str | None, list[Node]], node_id: str) -> str:
    """The newest leaf under `node_id`, following the newest child at each step."""
    current, seen = node_id, set()
    while children.get(current) and current not in seen:
        seen.add(current)
        current = children[current][-1].id
    return current


def leaf_after_delete(
    nodes: list[Node], deleted_id: str, current_leaf: str | None
) -> tuple[set[str], str | None]:
    """The ids the deletion removes, and the conversation's current leaf after it."""
    children = children_of(nodes)
    gone = subtree(children, deleted_id)
    if current_leaf is not None and current_leaf not in gone:
        return gone, current_leaf
    deleted = next(n for n in nodes if n.id == deleted_id)
    kin = children.get(deleted.parent_id, [])
    at = next(i for i, n in enumerate(kin) if n.id == deleted_id)
    others = kin[:at][::-1] + kin[at + 1 :]  # the older sibling first, then newer
    if others:
        return gone, deepest_leaf(children, others[0].id)
    if deleted.parent_id is not None:
        return gone, deleted.parent_id
    return gone, None


__all__ = ["Node", "children_of", "deepest_leaf", "leaf_after_delete", "subtree"]
