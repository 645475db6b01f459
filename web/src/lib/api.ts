// The HTTP API (PROTOCOL.md section 8 and /api/models).

import type { Conversation, ModelInfo } from './protocol';

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const data = (await response.json()) as { error?: { message?: string } };
      if (data.error?.message) message = data.error.message;
    } catch {
      /* not JSON */
    }
    throw new Error(message);
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export async function listConversations(archived: boolean): Promise<Conversation[]> {
  const all: Conversation[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 20; page++) {
    const query = new URLSearchParams({ limit: '200', archived: String(archived) });
    if (cursor) query.set('cursor', cursor);
    const data = await call<{ conversations: Conversation[]; nextCursor: string | null }>(
      'GET',
      `/api/conversations?${query}`,
    );
    all.push(...data.conversations);
    cursor = data.nextCursor;
    if (!cursor) break;
  }
  return all;
}

export type ConversationPatch = Partial<
  Pick<Conversation, 'title' | 'pinned' | 'archived' | 'model' | 'systemPrompt' | 'currentLeafId'>
>;

export async function patchConversation(id: string, patch: ConversationPatch): Promise<Conversation> {
  const data = await call<{ conversation: Conversation }>('PATCH', `/api/conversations/${encodeURIComponent(id)}`, patch);
  return data.conversation;
}

export async function deleteConversation(id: string): Promise<void> {
  await call<void>('DELETE', `/api/conversations/${encodeURIComponent(id)}`);
}

export async function listModels(): Promise<{ models: ModelInfo[]; default: string | null }> {
  return call('GET', '/api/models');
}
