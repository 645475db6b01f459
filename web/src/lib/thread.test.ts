import { describe, expect, it } from 'vitest';
import { buildTree, deepestLeaf, siblings, threadPath } from './thread';
import type { Message } from './protocol';

const m = (id: string, parentId: string | null): Message => ({
  id, parentId, conversationId: 'c', role: 'user', content: id, status: 'complete', isStreaming: false,
  streamCompleted: true, seq: 0, model: null, provider: null, error: null, usage: null, attachments: [],
  createdAt: '', updatedAt: '',
});

describe('thread', () => {
  const tree = buildTree([m('u1', null), m('a1', 'u1'), m('a2', 'u1'), m('u2', 'a1'), m('a3', 'u2')]);
  it('walks root to leaf', () => {
    expect(threadPath(tree, 'a3').map((x) => x.id)).toEqual(['u1', 'a1', 'u2', 'a3']);
    expect(threadPath(tree, 'a2').map((x) => x.id)).toEqual(['u1', 'a2']);
    expect(threadPath(tree, null).map((x) => x.id)).toEqual(['u1', 'a2']);
  });
  it('finds siblings and leaves', () => {
    expect(siblings(tree, tree.byId.get('a1')!).map((x) => x.id)).toEqual(['a1', 'a2']);
    expect(deepestLeaf(tree, 'a1')).toBe('a3');
  });
});
