// The WebSocket client of PROTOCOL.md section 5.
//
// It keeps the state of the one conversation the view shows (every message of
// every branch) and applies the stream to it by the resume rules: per message the
// last applied seq; a duplicate is ignored, a gap asks for a delta (`subscribe`
// with afterMessageId/afterSeq), a `catchup` replaces the state. It reconnects
// with exponential backoff and jitter, at once when the browser comes online or
// the tab becomes visible, keeps the socket alive with pings, and resends a
// generating command whose acknowledgement never came (same clientMessageId, so
// the server never starts it twice).

import type {
  ClientFrame,
  Conversation,
  GeneratingFrame,
  Message,
  ServerFrame,
} from './protocol';

export type ConnectionState = 'connecting' | 'open' | 'closed';

export type ClientEvent =
  | { kind: 'state'; state: ConnectionState }
  | { kind: 'snapshot'; conversationId: string } // the whole conversation was replaced
  | { kind: 'message'; messageId: string } // a message was added or its text/status changed
  | { kind: 'created'; conversationId: string; clientMessageId: string | null }
  | { kind: 'conversation'; conversation: Conversation }
  | { kind: 'deleted'; conversationId: string }
  | { kind: 'error'; code: string; message: string; conversationId: string | null; messageId: string | null };

/** The parts of a WebSocket the client uses (a fake one in the tests). */
export interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

/** The browser around the client; tests give fakes. */
export interface Environment {
  createSocket(url: string): SocketLike;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
  now(): number;
  /** `online` and `visibilitychange`: subscribe, return an unsubscriber. */
  onWake(fn: () => void): () => void;
  isVisible(): boolean;
}

export interface ClientOptions {
  url: string;
  env?: Environment;
  pingIntervalMs?: number;
  /** Without any frame for this long, the socket is presumed dead. */
  deadAfterMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

const OPEN = 1;

export function browserEnvironment(): Environment {
  return {
    createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
    setTimeout: (fn, ms) => window.setTimeout(fn, ms),
    clearTimeout: (handle) => window.clearTimeout(handle as number),
    random: () => Math.random(),
    now: () => Date.now(),
    onWake(fn) {
      const onVisible = () => {
        if (document.visibilityState === 'visible') fn();
      };
      window.addEventListener('online', fn);
      document.addEventListener('visibilitychange', onVisible);
      return () => {
        window.removeEventListener('online', fn);
        document.removeEventListener('visibilitychange', onVisible);
      };
    },
    isVisible: () => document.visibilityState === 'visible',
  };
}

/** The wait before reconnect attempt `attempt` (0-based): 0.5 s doubling to 30 s, +-50%. */
export function backoffDelay(attempt: number, random: number, minMs = 500, maxMs = 30_000): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return base * (0.5 + random);
}

export function newId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class ChatClient {
  readonly env: Environment;
  state: ConnectionState = 'closed';
  sessionId: string | null = null;

  /** The conversation the view shows (null: a new chat not yet created). */
  conversationId: string | null = null;
  conversation: Conversation | null = null;
  /** Every message of every branch of the shown conversation, in arrival order. */
  readonly messages = new Map<string, Message>();
  /** Per assistant message, the last applied seq (rule 1). */
  readonly lastSeq = new Map<string, number>();
  readonly lastReasoningSeq = new Map<string, number>();

  /** Generating commands sent but not yet acknowledged, by clientMessageId. */
  readonly pending = new Map<string, GeneratingFrame>();

  private socket: SocketLike | null = null;
  private listeners = new Set<(event: ClientEvent) => void>();
  private attempt = 0;
  private reconnectTimer: unknown = null;
  private pingTimer: unknown = null;
  private lastFrameAt = 0;
  private resyncing = false;
  private stopped = true;
  private unwake: (() => void) | null = null;
  private readonly pingIntervalMs: number;
  private readonly deadAfterMs: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(private readonly options: ClientOptions) {
    this.env = options.env ?? browserEnvironment();
    this.pingIntervalMs = options.pingIntervalMs ?? 20_000;
    this.deadAfterMs = options.deadAfterMs ?? 45_000;
    this.minBackoffMs = options.minBackoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
  }

  subscribe(listener: (event: ClientEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: ClientEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit({ kind: 'state', state });
  }

  // ---- connection ------------------------------------------------------------

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unwake = this.env.onWake(() => this.wake());
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.unwake?.();
    this.unwake = null;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close(1000, 'bye');
    }
    this.setState('closed');
  }

  /** Back online or visible again: reconnect now instead of waiting out the backoff. */
  wake(): void {
    if (this.stopped) return;
    if (this.socket && this.state !== 'closed') {
      // A socket that looks open after a sleep may be dead: probe it.
      if (this.state === 'open') this.sendRaw({ type: 'ping' });
      return;
    }
    if (this.reconnectTimer !== null) this.env.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.attempt = 0;
    this.connect();
  }

  private clearTimers(): void {
    if (this.reconnectTimer !== null) this.env.clearTimeout(this.reconnectTimer);
    if (this.pingTimer !== null) this.env.clearTimeout(this.pingTimer);
    this.reconnectTimer = null;
    this.pingTimer = null;
  }

  private connect(): void {
    this.reconnectTimer = null;
    this.setState('connecting');
    let url = this.options.url;
    if (this.sessionId) {
      url += (url.includes('?') ? '&' : '?') + 'sessionId=' + encodeURIComponent(this.sessionId);
    }
    const socket = this.env.createSocket(url);
    this.socket = socket;
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      this.lastFrameAt = this.env.now();
      if (typeof ev.data === 'string') this.receive(ev.data);
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const code = (ev as { code?: number } | null)?.code;
      if (code === 4401 || code === 4403) {
        // Refused (no login, or a foreign origin): say so; retrying soon cannot help.
        this.attempt = Math.max(this.attempt, 6);
        this.emit({
          kind: 'error',
          code: code === 4401 ? 'unauthorized' : 'forbidden',
          message:
            (ev as { reason?: string } | null)?.reason ||
            (code === 4401 ? 'Sign in to use this server.' : 'This page may not connect to the server.'),
          conversationId: null,
          messageId: null,
        });
      }
      this.lost();
    };
    socket.onerror = () => {
      /* a close follows */
    };
    socket.onopen = () => {
      this.lastFrameAt = this.env.now();
    };
  }

  private lost(): void {
    if (this.pingTimer !== null) this.env.clearTimeout(this.pingTimer);
    this.pingTimer = null;
    this.resyncing = false;
    this.setState('closed');
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt, this.env.random(), this.minBackoffMs, this.maxBackoffMs);
    this.attempt += 1;
    this.reconnectTimer = this.env.setTimeout(() => this.connect(), delay);
  }

  private schedulePing(): void {
    if (this.pingTimer !== null) this.env.clearTimeout(this.pingTimer);
    this.pingTimer = this.env.setTimeout(() => {
      this.pingTimer = null;
      if (!this.socket || this.state !== 'open') return;
      if (this.env.now() - this.lastFrameAt > this.deadAfterMs) {
        // Nothing heard for too long: the connection is dead even if not closed.
        const socket = this.socket;
        this.socket = null;
        socket.onclose = null;
        socket.close(4000, 'keep-alive timeout');
        this.lost();
        return;
      }
      this.sendRaw({ type: 'ping' });
      this.schedulePing();
    }, this.pingIntervalMs);
  }

  private sendRaw(frame: ClientFrame): boolean {
    if (!this.socket || this.socket.readyState !== OPEN || this.state !== 'open') return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  // ---- commands ----------------------------------------------------------------

  /** Show a conversation (or, with null, a new empty chat). */
  open(conversationId: string | null): void {
    if (this.conversationId && this.conversationId !== conversationId) {
      this.sendRaw({ type: 'unsubscribe', conversationId: this.conversationId });
    }
    this.conversationId = conversationId;
    this.conversation = null;
    this.messages.clear();
    this.lastSeq.clear();
    this.lastReasoningSeq.clear();
    this.resyncing = false;
    if (conversationId) this.sendRaw({ type: 'subscribe', conversationId });
    this.emit({ kind: 'snapshot', conversationId: conversationId ?? '' });
  }

  /** Send a generating command; it is resent after a reconnect until acknowledged. */
  send(frame: GeneratingFrame): string {
    const clientMessageId = frame.clientMessageId ?? newId();
    const withId = { ...frame, clientMessageId } as GeneratingFrame;
    this.pending.set(clientMessageId, withId);
    this.sendRaw(withId);
    return clientMessageId;
  }

  stopReply(): void {
    if (this.conversationId) this.sendRaw({ type: 'stop', conversationId: this.conversationId });
  }

  /** Resume position (rule 3): the newest assistant message and its last applied seq. */
  resumePoint(): { afterMessageId: string; afterSeq: number } | null {
    let newest: Message | null = null;
    for (const message of this.messages.values()) {
      if (message.role !== 'assistant') continue;
      if (!newest || message.createdAt >= newest.createdAt) newest = message;
    }
    if (!newest) return null;
    return { afterMessageId: newest.id, afterSeq: this.lastSeq.get(newest.id) ?? newest.seq };
  }

  private resubscribe(): void {
    if (!this.conversationId) return;
    const point = this.resumePoint();
    this.sendRaw(
      point
        ? { type: 'subscribe', conversationId: this.conversationId, ...point }
        : { type: 'subscribe', conversationId: this.conversationId },
    );
  }

  // ---- receiving --------------------------------------------------------------

  receive(data: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(data) as ServerFrame;
    } catch {
      return;
    }
    switch (frame.type) {
      case 'hello': {
        this.sessionId = frame.sessionId;
        this.attempt = 0;
        this.setState('open');
        this.schedulePing();
        this.resubscribe();
        for (const pending of this.pending.values()) this.sendRaw(pending);
        break;
      }
      case 'conversation_created': {
        if (frame.clientMessageId) this.pending.delete(frame.clientMessageId);
        if (this.conversationId === null || this.conversationId === frame.conversationId) {
          this.conversationId = frame.conversationId;
          this.conversation = frame.conversation;
          this.upsert(frame.userMessage);
          if (frame.message) this.upsert(frame.message);
          if (this.conversation) this.conversation = { ...this.conversation, currentLeafId: frame.messageId };
        }
        this.emit({ kind: 'conversation', conversation: frame.conversation });
        this.emit({ kind: 'created', conversationId: frame.conversationId, clientMessageId: frame.clientMessageId ?? null });
        break;
      }
      case 'message_started': {
        if (frame.clientMessageId) this.pending.delete(frame.clientMessageId);
        if (frame.conversationId !== this.conversationId) break;
        if (frame.userMessage) this.upsert(frame.userMessage);
        if (frame.message) this.upsert(frame.message);
        else if (!this.messages.has(frame.messageId)) {
          this.upsert(placeholder(frame.conversationId, frame.messageId, frame.userMessageId));
        }
        if (this.conversation) this.conversation = { ...this.conversation, currentLeafId: frame.messageId, hasActiveStream: true };
        this.emit({ kind: 'snapshot', conversationId: frame.conversationId });
        break;
      }
      case 'text': {
        if (frame.conversationId !== this.conversationId) break;
        const last = this.lastSeq.get(frame.messageId) ?? 0;
        if (frame.seq <= last) break; // duplicate (rule 2)
        if (frame.seq > last + 1) {
          this.gap(frame.messageId, last);
          break;
        }
        this.resyncing = false;
        let message = this.messages.get(frame.messageId);
        if (!message) {
          message = placeholder(frame.conversationId, frame.messageId, null);
          this.messages.set(message.id, message);
        }
        message.content += frame.content;
        message.seq = frame.seq;
        this.lastSeq.set(frame.messageId, frame.seq);
        this.emit({ kind: 'message', messageId: frame.messageId });
        break;
      }
      case 'reasoning': {
        if (frame.conversationId !== this.conversationId) break;
        const last = this.lastReasoningSeq.get(frame.messageId) ?? 0;
        if (frame.reasoningSeq !== last + 1) break; // a catch-up repairs reasoning
        const message = this.messages.get(frame.messageId);
        if (!message) break;
        message.reasoning = (message.reasoning ?? '') + frame.content;
        message.reasoningSeq = frame.reasoningSeq;
        this.lastReasoningSeq.set(frame.messageId, frame.reasoningSeq);
        this.emit({ kind: 'message', messageId: frame.messageId });
        break;
      }
      case 'done': {
        if (frame.conversationId !== this.conversationId) break;
        const last = this.lastSeq.get(frame.messageId) ?? 0;
        if (frame.seq > last) {
          this.gap(frame.messageId, last);
          break;
        }
        const message = this.messages.get(frame.messageId);
        if (message) {
          message.status = frame.status;
          message.isStreaming = false;
          message.streamCompleted = frame.status === 'complete';
          if (frame.usage) message.usage = frame.usage;
          this.emit({ kind: 'message', messageId: frame.messageId });
        }
        if (this.conversation) this.conversation = { ...this.conversation, hasActiveStream: false };
        break;
      }
      case 'catchup': {
        const id = frame.conversation.id;
        if (id !== this.conversationId) break;
        // Rule 4: replace the state, last seqs from the snapshot.
        this.conversation = frame.conversation;
        this.messages.clear();
        this.lastSeq.clear();
        this.lastReasoningSeq.clear();
        for (const message of frame.messages) this.upsert(message);
        this.resyncing = false;
        this.emit({ kind: 'snapshot', conversationId: id });
        break;
      }
      case 'conversation_updated': {
        if (frame.conversation.id === this.conversationId) {
          this.conversation = frame.conversation;
        }
        this.emit({ kind: 'conversation', conversation: frame.conversation });
        break;
      }
      case 'conversation_deleted': {
        this.emit({ kind: 'deleted', conversationId: frame.conversationId });
        break;
      }
      case 'resync': {
        if (frame.conversationId === this.conversationId) {
          this.resyncing = false;
          this.resubscribe();
          this.resyncing = true;
        }
        break;
      }
      case 'error': {
        // An error that belongs to no message answers a command: it will not be
        // acknowledged, so stop resending the oldest one.
        if (!frame.messageId && this.pending.size > 0) {
          const first = this.pending.keys().next().value;
          if (first !== undefined) this.pending.delete(first);
        }
        const message = frame.messageId ? this.messages.get(frame.messageId) : undefined;
        if (message) message.error = { code: frame.code, message: frame.message };
        this.emit({
          kind: 'error',
          code: frame.code,
          message: frame.message,
          conversationId: frame.conversationId ?? null,
          messageId: frame.messageId ?? null,
        });
        if (message) this.emit({ kind: 'message', messageId: message.id });
        break;
      }
      case 'pong':
        break;
    }
  }

  private gap(messageId: string, last: number): void {
    if (this.resyncing || !this.conversationId) return;
    this.resyncing = true;
    this.sendRaw({ type: 'subscribe', conversationId: this.conversationId, afterMessageId: messageId, afterSeq: last });
  }

  private upsert(message: Message): void {
    const copy = { ...message };
    this.messages.set(copy.id, copy);
    if (copy.role === 'assistant') {
      this.lastSeq.set(copy.id, copy.seq);
      this.lastReasoningSeq.set(copy.id, copy.reasoningSeq ?? 0);
    }
  }
}

function placeholder(conversationId: string, id: string, parentId: string | null): Message {
  const now = new Date().toISOString();
  return {
    id,
    conversationId,
    parentId,
    role: 'assistant',
    content: '',
    status: 'streaming',
    isStreaming: true,
    streamCompleted: false,
    seq: 0,
    model: null,
    provider: null,
    error: null,
    usage: null,
    attachments: [],
    createdAt: now,
    updatedAt: now,
  };
}
