// Messages form a tree through parentId; the shown thread is the path from the
// root to the conversation's currentLeafId (PROTOCOL.md section 6).

import type { Message } from './protocol';

export interface Tree {
  byId: Map<string, Message>;
  children: Map<string | null, Message[]>;
}

export function buildTree(messages: Iterable<Message>): Tree {
  const byId = new Map<string, Message>();
  const children = new Map<string | null, Message[]>();
  for (const message of messages) {
    byId.set(message.id, message);
    const key = message.parentId;
    const list = children.get(key);
    if (list) list.push(message);
    else children.set(key, [message]);
  }
  return { byId, children };
}

/** The newest leaf under `id`, following the newest child at each step. */
export function deepestLeaf(tree: Tree, id: string): string {
  let current = id;
  for (;;) {
    const kids = tree.children.get(current);
    if (!kids || kids.length === 0) return current;
    current = kids[kids.length - 1]!.id;
  }
}

/** The path from the root to `leafId` (or to the newest leaf when it is unknown). */
export function threadPath(tree: Tree, leafId: string | null): Message[] {
  let leaf = leafId && tree.byId.has(leafId) ? leafId : null;
  if (!leaf) {
    const roots = tree.children.get(null);
    if (!roots || roots.length === 0) return [];
    leaf = deepestLeaf(tree, roots[roots.length - 1]!.id);
  }
  const path: Message[] = [];
  let current: Message | undefined = tree.byId.get(leaf);
  const seen = new Set<string>();
  while (current && !seen.has(current.id)) {
    seen.add(current.id);
    path.push(current);
    current = current.parentId ? tree.byId.get(current.parentId) : undefined;
  }
  return path.reverse();
}

export function siblings(tree: Tree, message: Message): Message[] {
  return tree.children.get(message.parentId) ?? [message];
}
