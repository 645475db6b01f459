import { describe, expect, it } from 'vitest';
import { backoffDelay, ChatClient, type Environment, type SocketLike } from './chat-client';
import type { ClientFrame, Message } from './protocol';

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: ClientFrame[] = [];
  closed = false;
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientFrame);
  }
  close(): void {
    this.closed = true;
  }
  // test helpers
  open(sessionId = 's1'): void {
    this.readyState = 1;
    this.onopen?.({});
    this.frame({ type: 'hello', sessionId, userId: 'u', protocol: 1 });
  }
  frame(obj: object): void {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

class FakeEnv implements Environment {
  sockets: FakeSocket[] = [];
  timers: { fn: () => void; at: number; id: number }[] = [];
  time = 0;
  nextId = 1;
  rand = 0.5;
  wakers: (() => void)[] = [];
  createSocket(url: string): SocketLike {
    const socket = new FakeSocket(url);
    this.sockets.push(socket);
    return socket;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ fn, at: this.time + ms, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  random(): number {
    return this.rand;
  }
  now(): number {
    return this.time;
  }
  onWake(fn: () => void): () => void {
    this.wakers.push(fn);
    return () => {
      this.wakers = this.wakers.filter((w) => w !== fn);
    };
  }
  isVisible(): boolean {
    return true;
  }
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.timers.shift();
      this.time = next.at;
      next.fn();
    }
    this.time = until;
  }
  get last(): FakeSocket {
    return this.sockets[this.sockets.length - 1]!;
  }
}

function msg(id: string, role: 'user' | 'assistant', content: string, seq: number, parentId: string | null = null, createdAt = '2026-01-01T00:00:00Z'): Message {
  return {
    id, conversationId: 'c1', parentId, role, content, status: role === 'assistant' && seq < 99 ? 'streaming' : 'complete',
    isStreaming: false, streamCompleted: true, seq, model: 'demo/echo', provider: 'demo', error: null, usage: null,
    attachments: [], createdAt, updatedAt: createdAt,
  };
}

const conv = { id: 'c1', title: 't', model: 'demo/echo', provider: 'demo', systemPrompt: null, pinned: false, archived: false, currentLeafId: 'a1', createdAt: '', updatedAt: '', hasActiveStream: true };

function setup() {
  const env = new FakeEnv();
  const client = new ChatClient({ url: 'ws://x/ws', env });
  client.start();
  client.open('c1');
  env.last.open();
  env.last.frame({ type: 'catchup', conversation: conv, messages: [msg('u1', 'user', 'hi', 0), msg('a1', 'assistant', 'w1 w2 ', 2, 'u1', '2026-01-01T00:00:01Z')], hasActiveStream: true, activeMessageId: 'a1', activeSeq: 2 });
  return { env, client };
}

const text = (seq: number, content: string) => ({ type: 'text', conversationId: 'c1', messageId: 'a1', seq, content });

describe('ChatClient resume rules', () => {
  it('subscribes after hello and applies the catch-up', () => {
    const { env, client } = setup();
    expect(env.last.sent[0]).toEqual({ type: 'subscribe', conversationId: 'c1' });
    expect(client.messages.get('a1')?.content).toBe('w1 w2 ');
    expect(client.lastSeq.get('a1')).toBe(2);
    expect(client.state).toBe('open');
  });

  it('applies seq last+1, ignores duplicates', () => {
    const { env, client } = setup();
    env.last.frame(text(3, 'w3 '));
    env.last.frame(text(3, 'w3 '));
    env.last.frame(text(2, 'w2 '));
    env.last.frame(text(4, 'w4 '));
    expect(client.messages.get('a1')?.content).toBe('w1 w2 w3 w4 ');
    expect(client.lastSeq.get('a1')).toBe(4);
  });

  it('asks for a delta on a gap, once, and applies what follows', () => {
    const { env, client } = setup();
    env.last.sent = [];
    env.last.frame(text(5, 'w5 '));
    env.last.frame(text(6, 'w6 '));
    expect(env.last.sent).toEqual([{ type: 'subscribe', conversationId: 'c1', afterMessageId: 'a1', afterSeq: 2 }]);
    expect(client.messages.get('a1')?.content).toBe('w1 w2 ');
    for (let i = 3; i <= 6; i++) env.last.frame(text(i, `w${i} `));
    env.last.frame({ type: 'done', conversationId: 'c1', messageId: 'a1', seq: 6, status: 'complete' });
    expect(client.messages.get('a1')?.content).toBe('w1 w2 w3 w4 w5 w6 ');
    expect(client.messages.get('a1')?.status).toBe('complete');
  });

  it('a done beyond what was applied is a gap', () => {
    const { env, client } = setup();
    env.last.sent = [];
    env.last.frame({ type: 'done', conversationId: 'c1', messageId: 'a1', seq: 4, status: 'complete' });
    expect(env.last.sent[0]).toMatchObject({ type: 'subscribe', afterSeq: 2 });
    expect(client.messages.get('a1')?.status).toBe('streaming');
  });

  it('a catch-up replaces the state even when behind', () => {
    const { env, client } = setup();
    env.last.frame(text(3, 'w3 '));
    env.last.frame({ type: 'catchup', conversation: conv, messages: [msg('u1', 'user', 'hi', 0), msg('a1', 'assistant', 'w1 ', 1, 'u1')], hasActiveStream: true, activeMessageId: 'a1', activeSeq: 1 });
    expect(client.messages.get('a1')?.content).toBe('w1 ');
    env.last.frame(text(2, 'w2 '));
    expect(client.messages.get('a1')?.content).toBe('w1 w2 ');
  });

  it('reconnects with a delta resume and the same session', () => {
    const { env, client } = setup();
    env.last.frame(text(3, 'w3 '));
    env.last.drop();
    expect(client.state).toBe('closed');
    env.advance(499); // 0.5 s * (0.5 + 0.5)
    expect(env.sockets.length).toBe(1);
    env.advance(1);
    expect(env.sockets.length).toBe(2);
    expect(env.last.url).toBe('ws://x/ws?sessionId=s1');
    env.last.open();
    expect(env.last.sent[0]).toEqual({ type: 'subscribe', conversationId: 'c1', afterMessageId: 'a1', afterSeq: 3 });
  });

  it('backs off 0.5 s doubling to 30 s with +-50% jitter', () => {
    expect(backoffDelay(0, 0.5)).toBe(500);
    expect(backoffDelay(1, 0.5)).toBe(1000);
    expect(backoffDelay(2, 0)).toBe(1000);
    expect(backoffDelay(2, 0.999)).toBeCloseTo(2998);
    expect(backoffDelay(20, 0.5)).toBe(30_000);
    expect(backoffDelay(20, 0)).toBe(15_000);
    const env = new FakeEnv();
    const client = new ChatClient({ url: 'ws://x/ws', env });
    client.start();
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      env.last.drop();
      const timer = env.timers[env.timers.length - 1]!;
      waits.push(timer.at - env.time);
      env.advance(timer.at - env.time);
    }
    expect(waits).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  it('reconnects at once when the browser wakes', () => {
    const env = new FakeEnv();
    const client = new ChatClient({ url: 'ws://x/ws', env });
    client.start();
    env.last.drop();
    expect(env.sockets.length).toBe(1);
    for (const wake of env.wakers) wake();
    expect(env.sockets.length).toBe(2);
    expect(env.timers.length).toBe(0);
  });

  it('resends an unacknowledged start_chat with its clientMessageId', () => {
    const env = new FakeEnv();
    const client = new ChatClient({ url: 'ws://x/ws', env });
    client.start();
    client.open(null);
    env.last.open();
    const id = client.send({ type: 'start_chat', prompt: 'hello' });
    expect(env.last.sent).toEqual([{ type: 'start_chat', prompt: 'hello', clientMessageId: id }]);
    env.last.drop();
    env.advance(1000);
    env.last.open();
    expect(env.last.sent).toEqual([{ type: 'start_chat', prompt: 'hello', clientMessageId: id }]);
    env.last.frame({ type: 'conversation_created', conversationId: 'c9', messageId: 'a9', userMessageId: 'u9', clientMessageId: id, conversation: { ...conv, id: 'c9' }, userMessage: { ...msg('u9', 'user', 'hello', 0), conversationId: 'c9' } });
    expect(client.pending.size).toBe(0);
    expect(client.conversationId).toBe('c9');
    env.last.drop();
    env.advance(1000);
    env.last.open();
    expect(env.last.sent).toEqual([{ type: 'subscribe', conversationId: 'c9' }]);
  });

  it('pings and treats a silent socket as dead', () => {
    const env = new FakeEnv();
    const client = new ChatClient({ url: 'ws://x/ws', env, pingIntervalMs: 1000, deadAfterMs: 2500 });
    client.start();
    env.last.open();
    env.advance(1000);
    expect(env.last.sent).toContainEqual({ type: 'ping' });
    env.advance(2000);
    expect(env.last.closed).toBe(true);
    expect(client.state).toBe('closed');
  });

  it('resubscribes from its position on resync', () => {
    const { env } = setup();
    env.last.sent = [];
    env.last.frame({ type: 'resync', conversationId: 'c1', reason: 'slow_consumer' });
    expect(env.last.sent).toEqual([{ type: 'subscribe', conversationId: 'c1', afterMessageId: 'a1', afterSeq: 2 }]);
  });

  it('reports a refused socket and backs off long', () => {
    const env = new FakeEnv();
    const client = new ChatClient({ url: 'ws://x/ws', env });
    const errors: string[] = [];
    client.subscribe((e) => {
      if (e.kind === 'error') errors.push(e.code);
    });
    client.start();
    env.last.drop(4401);
    expect(errors).toEqual(['unauthorized']);
    const timer = env.timers[env.timers.length - 1]!;
    expect(timer.at - env.time).toBe(30_000);
  });
});
