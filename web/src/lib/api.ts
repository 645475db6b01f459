// The HTTP API (PROTOCOL.md section 8 and /api/models).

import type { Attachment, Conversation, ModelInfo } from './protocol';

/** An HTTP answer that was not 2xx: its status, the server's error code and message,
 *  and Retry-After in seconds when the server sent it (429). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

let onUnauthorized: (() => void) | null = null;

/** Called when a request answers 401 (the session ended or expired). */
export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

async function call<T>(method: string, path: string, body?: unknown, quiet401 = false): Promise<T> {
  const raw = body instanceof Blob;
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let code = 'http_error';
    try {
      const data = (await response.json()) as { error?: { code?: string; message?: string } };
      if (data.error?.message) message = data.error.message;
      if (data.error?.code) code = data.error.code;
    } catch {
      /* not JSON */
    }
    const retry = Number(response.headers.get('Retry-After'));
    if (response.status === 401 && !quiet401) onUnauthorized?.();
    throw new ApiError(response.status, code, message, Number.isFinite(retry) && retry > 0 ? retry : null);
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

/** A share link as its owner sees it listed. */
export interface ShareInfo {
  id: string;
  conversationId: string;
  token: string;
  url: string;
  public: boolean;
  title: string;
  messageCount: number;
  createdAt: string;
}

/** What a share link shows: a snapshot of one branch. */
export interface SharedConversation {
  title: string;
  public: boolean;
  createdAt: string;
  messages: { role: 'user' | 'assistant'; content: string; model: string | null; createdAt: string }[];
  canCopy: boolean;
}

export async function createShare(conversationId: string, isPublic: boolean): Promise<ShareInfo> {
  const data = await call<{ share: ShareInfo }>('POST', `/api/conversations/${encodeURIComponent(conversationId)}/shares`, {
    public: isPublic,
  });
  return data.share;
}

export async function listShares(): Promise<ShareInfo[]> {
  return (await call<{ shares: ShareInfo[] }>('GET', '/api/shares')).shares;
}

export async function revokeShare(id: string): Promise<void> {
  await call<void>('DELETE', `/api/shares/${encodeURIComponent(id)}`);
}

/** Read a share (a 401 here means "sign in to see it", not a lost session). */
export async function readShare(token: string): Promise<SharedConversation> {
  return call('GET', `/api/share/${encodeURIComponent(token)}`, undefined, true);
}

export async function copyShare(token: string): Promise<string> {
  const data = await call<{ conversationId: string }>('POST', `/api/share/${encodeURIComponent(token)}/copy`, {}, true);
  return data.conversationId;
}

/** An uploaded file, as `POST /api/uploads` answers it. */
export interface UploadInfo extends Attachment {
  chars: number;
  createdAt: string;
}

/** Upload one file (the body is the file; the server detects its type from content). */
export async function uploadFile(file: Blob, name: string): Promise<UploadInfo> {
  const data = await call<{ upload: UploadInfo }>('POST', `/api/uploads?name=${encodeURIComponent(name)}`, file);
  return data.upload;
}

/** Where an uploaded file downloads from (its owner only). */
export function uploadUrl(id: string): string {
  return `/api/uploads/${encodeURIComponent(id)}`;
}

/** Import DuraChat's JSON export or ChatGPT's conversations.json (the file as is). */
export async function importFile(file: Blob): Promise<{ imported: string[]; skipped: number }> {
  return call('POST', '/api/import', file);
}

/** Where a conversation's export downloads from: `md` its branch, `json` its tree. */
export function exportUrl(conversationId: string, format: 'md' | 'json'): string {
  return `/api/conversations/${encodeURIComponent(conversationId)}/export?format=${format}`;
}

/** Delete a message and its subtree; the conversation comes back with its new leaf. */
export async function deleteMessage(conversationId: string, messageId: string): Promise<Conversation> {
  const path = `/api/conversations/${encodeURIComponent(conversationId)}/messages/${encodeURIComponent(messageId)}`;
  const data = await call<{ conversation: Conversation }>('DELETE', path);
  return data.conversation;
}

/** A piece of a search snippet: plain text, never HTML; `match` marks a hit. */
export interface SnippetPart {
  text: string;
  match: boolean;
}

/** A message that matched, or (messageId null) a conversation whose title did. */
export interface SearchResult {
  conversationId: string;
  title: string;
  messageId: string | null;
  role: 'user' | 'assistant' | 'system' | null;
  snippet: SnippetPart[];
  createdAt: string;
}

export async function search(query: string, limit = 20): Promise<SearchResult[]> {
  const params = new URLSearchParams({ q: query, limit: String(limit) });
  const data = await call<{ results: SearchResult[] }>('GET', `/api/search?${params}`);
  return data.results;
}

export async function listModels(): Promise<{ models: ModelInfo[]; default: string | null }> {
  return call('GET', '/api/models');
}

// ---- accounts (`/api/auth`, `/api/admin`) -------------------------------------------

export interface User {
  id: string;
  username: string;
  isAdmin: boolean;
  disabled: boolean;
  createdAt: string;
}

export interface AuthStatus {
  authEnabled: boolean;
  setupNeeded: boolean;
  setupNeedsToken: boolean;
  user: User | null;
}

export interface ApiToken {
  id: string;
  name: string;
  createdAt: string;
}

export async function authStatus(): Promise<AuthStatus> {
  return call('GET', '/api/auth/status');
}

export async function setup(username: string, password: string, setupToken: string | null): Promise<User> {
  const body = setupToken ? { username, password, setupToken } : { username, password };
  return (await call<{ user: User }>('POST', '/api/auth/setup', body, true)).user;
}

export async function login(username: string, password: string): Promise<User> {
  return (await call<{ user: User }>('POST', '/api/auth/login', { username, password }, true)).user;
}

export async function logout(): Promise<void> {
  await call<void>('POST', '/api/auth/logout', undefined, true);
}

export async function changePassword(currentPassword: string, newPassword: string): Promise<void> {
  await call<void>('POST', '/api/auth/password', { currentPassword, newPassword });
}

export async function listTokens(): Promise<ApiToken[]> {
  return (await call<{ tokens: ApiToken[] }>('GET', '/api/auth/tokens')).tokens;
}

export async function createToken(name: string): Promise<ApiToken & { token: string }> {
  return call('POST', '/api/auth/tokens', { name });
}

export async function revokeToken(id: string): Promise<void> {
  await call<void>('DELETE', `/api/auth/tokens/${encodeURIComponent(id)}`);
}

export async function listUsers(): Promise<User[]> {
  return (await call<{ users: User[] }>('GET', '/api/admin/users')).users;
}

export async function addUser(username: string, password: string, isAdmin: boolean): Promise<User> {
  return (await call<{ user: User }>('POST', '/api/admin/users', { username, password, isAdmin })).user;
}

export async function updateUser(id: string, patch: { disabled?: boolean; password?: string }): Promise<User> {
  return (await call<{ user: User }>('PATCH', `/api/admin/users/${encodeURIComponent(id)}`, patch)).user;
}

export async function deleteUser(id: string): Promise<void> {
  await call<void>('DELETE', `/api/admin/users/${encodeURIComponent(id)}`);
}
