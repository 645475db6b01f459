// The app's reactive state: the chat client's conversation mirrored into runes,
// the conversation list, models, theme and the URL.

import { ChatClient, type ConnectionState } from './chat-client';
import * as api from './api';
import type { Conversation, Message, ModelInfo } from './protocol';
import { buildTree, deepestLeaf, threadPath, type Tree } from './thread';

export type Theme = 'system' | 'light' | 'dark';

export class AppState {
  readonly client: ChatClient;
  connection: ConnectionState = $state('connecting');
  conversationId: string | null = $state(null);
  conversation: Conversation | null = $state(null);
  /** Every message of every branch; each object is mutated in place as it streams. */
  messages: Record<string, Message> = $state({});
  conversations: Conversation[] = $state([]);
  showArchived = $state(false);
  search = $state('');
  /** Server search results for `search`; null while no search is shown. */
  searchResults: api.SearchResult[] | null = $state(null);
  /** A message to scroll to and show the branch of, once its conversation is loaded
   *  (`?m=` in the URL, a search result). */
  focusMessageId: string | null = $state(null);
  models: ModelInfo[] = $state([]);
  defaultModel: string | null = $state(null);
  newChatModel: string | null = $state(null);
  theme: Theme = $state('system');
  announcement = $state('');
  notice = $state('');
  sidebarOpen = $state(false);
  loaded = $state(false);
  /** The conversation in the URL does not exist for this user. */
  missing = $state(false);

  tree: Tree = $derived(buildTree(Object.values(this.messages)));
  thread: Message[] = $derived(threadPath(this.tree, this.conversation?.currentLeafId ?? null));
  streaming: Message | null = $derived(
    this.thread.find((m) => m.role === 'assistant' && m.status === 'streaming') ?? null,
  );
  visibleConversations: Conversation[] = $derived(sortConversations(this.conversations, this.search));

  constructor(
    url: string,
    private readonly onAuthLost: (reason: string) => void = () => {},
  ) {
    this.client = new ChatClient({ url });
    this.client.subscribe((event) => {
      switch (event.kind) {
        case 'state':
          this.connection = event.state;
          if (event.state === 'open') void this.refreshList();
          this.announce(event.state === 'open' ? 'Connected' : event.state === 'closed' ? 'Connection lost, reconnecting' : '');
          break;
        case 'snapshot':
          this.syncAll();
          this.showFocused();
          break;
        case 'message':
          this.syncMessage(event.messageId);
          break;
        case 'created':
          this.conversationId = event.conversationId;
          this.syncAll();
          this.setUrl(event.conversationId, true);
          break;
        case 'conversation':
          this.upsertConversation(event.conversation);
          if (event.conversation.id === this.conversationId) {
            this.conversation = { ...event.conversation, currentLeafId: this.client.conversation?.currentLeafId ?? event.conversation.currentLeafId };
          }
          break;
        case 'deleted':
          this.conversations = this.conversations.filter((c) => c.id !== event.conversationId);
          if (event.conversationId === this.conversationId) this.openConversation(null);
          break;
        case 'error':
          if (event.code === 'unauthorized' || event.code === 'forbidden') {
            this.onAuthLost(event.message);
          } else if (event.code === 'not_found' && event.conversationId && event.conversationId === this.conversationId) {
            this.missing = true;
          } else if (!event.messageId) {
            this.notice = `${event.code}: ${event.message}`;
          }
          break;
      }
    });
  }

  start(): void {
    this.theme = (localStorage.getItem('durachat-theme') as Theme | null) ?? 'system';
    this.applyTheme();
    const params = new URLSearchParams(location.search);
    this.openConversation(params.get('c'), false);
    this.focusMessageId = params.get('m');
    this.client.start();
    window.addEventListener('popstate', () => {
      const next = new URLSearchParams(location.search).get('c');
      if (next !== this.conversationId) this.openConversation(next, false);
    });
    void this.loadModels();
    void this.refreshList();
  }

  announce(text: string): void {
    this.announcement = text;
  }

  // ---- mirror of the client's state ----------------------------------------------

  private syncAll(): void {
    this.conversationId = this.client.conversationId;
    this.conversation = this.client.conversation ? { ...this.client.conversation } : null;
    const next: Record<string, Message> = {};
    for (const [id, message] of this.client.messages) next[id] = { ...message };
    this.messages = next;
    this.loaded = this.client.conversation !== null || this.client.conversationId === null;
  }

  private syncMessage(id: string): void {
    const source = this.client.messages.get(id);
    if (!source) return;
    const target = this.messages[id];
    if (!target) {
      this.messages[id] = { ...source };
      return;
    }
    const wasStreaming = target.status === 'streaming';
    if (target.content !== source.content) target.content = source.content;
    if (target.reasoning !== source.reasoning) target.reasoning = source.reasoning;
    if (target.status !== source.status) target.status = source.status;
    if (target.error !== source.error) target.error = source.error;
    target.seq = source.seq;
    if (wasStreaming && source.status !== 'streaming') {
      this.announce(source.status === 'complete' ? 'Reply finished' : `Reply ${source.status}`);
    }
  }

  // ---- navigation -------------------------------------------------------------------

  setUrl(id: string | null, replace: boolean, messageId: string | null = null): void {
    const url = new URL(location.href);
    if (id) url.searchParams.set('c', id);
    else url.searchParams.delete('c');
    if (messageId) url.searchParams.set('m', messageId);
    else url.searchParams.delete('m');
    if (url.href === location.href) return;
    if (replace) history.replaceState(null, '', url);
    else history.pushState(null, '', url);
  }

  openConversation(id: string | null, push = true): void {
    this.focusMessageId = null;
    this.loaded = id === null;
    this.missing = false;
    this.client.open(id);
    this.syncAll();
    this.notice = '';
    this.sidebarOpen = false;
    if (push) this.setUrl(id, false);
  }

  /** Open a search result: its conversation, scrolled to its message on its branch. */
  openMessage(conversationId: string, messageId: string | null): void {
    if (conversationId !== this.conversationId) this.openConversation(conversationId, false);
    this.focusMessageId = messageId;
    this.sidebarOpen = false;
    this.setUrl(conversationId, false, messageId);
    this.showFocused();
  }

  /** Select the branch of the focused message when it is loaded and not shown. */
  private showFocused(): void {
    const id = this.focusMessageId;
    if (!id || !this.tree.byId.has(id) || this.thread.some((m) => m.id === id)) return;
    const message = this.tree.byId.get(id);
    if (message) void this.showBranch(message);
  }

  async runSearch(query: string): Promise<void> {
    const q = query.trim();
    if (!q) {
      this.searchResults = null;
      return;
    }
    try {
      const results = await api.search(q);
      if (this.search.trim() === q) this.searchResults = results;
    } catch (error) {
      this.notice = `Search failed: ${String(error)}`;
    }
  }

  // ---- commands ---------------------------------------------------------------------

  sendPrompt(prompt: string, attachments: string[] = []): void {
    if (!prompt.trim() && attachments.length === 0) return;
    const files = attachments.length ? { attachments } : {};
    const last = this.thread[this.thread.length - 1];
    if (this.conversationId) {
      this.client.send({ type: 'start_chat', prompt, conversationId: this.conversationId, ...(last ? { parentId: last.id } : {}), ...files });
    } else {
      const model = this.newChatModel ?? this.defaultModel;
      this.client.send({ type: 'start_chat', prompt, ...(model ? { model } : {}), ...files });
    }
  }

  stop(): void {
    this.client.stopReply();
  }

  regenerate(message: Message): void {
    if (this.conversationId) this.client.send({ type: 'regenerate', conversationId: this.conversationId, messageId: message.id });
  }

  continueReply(message: Message): void {
    if (this.conversationId) this.client.send({ type: 'continue', conversationId: this.conversationId, messageId: message.id });
  }

  edit(message: Message, prompt: string): void {
    if (this.conversationId && prompt.trim()) {
      this.client.send({ type: 'edit', conversationId: this.conversationId, messageId: message.id, prompt });
    }
  }

  /** Delete a message and its subtree; the server's `catchup` then redraws every tab. */
  async deleteMessage(message: Message): Promise<void> {
    if (!this.conversationId) return;
    try {
      const conversation = await api.deleteMessage(this.conversationId, message.id);
      this.upsertConversation(conversation);
      this.announce('Message deleted');
    } catch (error) {
      this.notice = `Could not delete: ${String(error)}`;
    }
  }

  /** Show another sibling's branch and remember it on the server. */
  async showBranch(sibling: Message): Promise<void> {
    if (!this.conversation || !this.conversationId) return;
    const leaf = deepestLeaf(this.tree, sibling.id);
    this.conversation = { ...this.conversation, currentLeafId: leaf };
    if (this.client.conversation) this.client.conversation = { ...this.client.conversation, currentLeafId: leaf };
    try {
      await api.patchConversation(this.conversationId, { currentLeafId: leaf });
    } catch (error) {
      this.notice = String(error);
    }
  }

  // ---- conversation list ---------------------------------------------------------------

  async refreshList(): Promise<void> {
    try {
      this.conversations = await api.listConversations(this.showArchived);
    } catch (error) {
      this.notice = `Could not load conversations: ${String(error)}`;
    }
  }

  private upsertConversation(conversation: Conversation): void {
    const others = this.conversations.filter((c) => c.id !== conversation.id);
    this.conversations = conversation.archived === this.showArchived ? [conversation, ...others] : others;
  }

  async patch(id: string, patch: api.ConversationPatch): Promise<void> {
    try {
      const updated = await api.patchConversation(id, patch);
      this.upsertConversation(updated);
      if (id === this.conversationId && this.conversation) {
        this.conversation = { ...updated, currentLeafId: this.conversation.currentLeafId };
        if (this.client.conversation) this.client.conversation = { ...updated, currentLeafId: this.conversation.currentLeafId };
      }
    } catch (error) {
      this.notice = String(error);
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await api.deleteConversation(id);
      this.conversations = this.conversations.filter((c) => c.id !== id);
      if (id === this.conversationId) this.openConversation(null);
    } catch (error) {
      this.notice = String(error);
    }
  }

  async toggleArchivedView(): Promise<void> {
    this.showArchived = !this.showArchived;
    await this.refreshList();
  }

  // ---- models and theme ------------------------------------------------------------

  async loadModels(): Promise<void> {
    try {
      const data = await api.listModels();
      this.models = data.models;
      this.defaultModel = data.default;
    } catch (error) {
      this.notice = `Could not load models: ${String(error)}`;
    }
  }

  cycleTheme(): void {
    this.theme = this.theme === 'system' ? 'light' : this.theme === 'light' ? 'dark' : 'system';
    localStorage.setItem('durachat-theme', this.theme);
    this.applyTheme();
  }

  applyTheme(): void {
    if (this.theme === 'system') delete document.documentElement.dataset['theme'];
    else document.documentElement.dataset['theme'] = this.theme;
  }
}

export function sortConversations(list: Conversation[], search: string): Conversation[] {
  const needle = search.trim().toLowerCase();
  const filtered = needle ? list.filter((c) => (c.title ?? 'New chat').toLowerCase().includes(needle)) : list.slice();
  return filtered.sort((a, b) => {
    if (a.pinned !== b.pinned) return a.pinned ? -1 : 1;
    return a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0;
  });
}
