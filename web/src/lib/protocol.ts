// The wire protocol of PROTOCOL.md, mirroring src/durachat/api/protocol.py.
// tests/ui/test_protocol_mirror.py checks that both list the same message types.

export const CLIENT_TYPES = [
  'start_chat',
  'subscribe',
  'unsubscribe',
  'stop',
  'regenerate',
  'edit',
  'continue',
  'ping',
] as const;

export const SERVER_TYPES = [
  'hello',
  'conversation_created',
  'message_started',
  'reasoning',
  'text',
  'done',
  'error',
  'catchup',
  'conversation_updated',
  'conversation_deleted',
  'resync',
  'pong',
] as const;

export type ClientType = (typeof CLIENT_TYPES)[number];
export type ServerType = (typeof SERVER_TYPES)[number];

export type Role = 'user' | 'assistant' | 'system';
export type Status = 'complete' | 'streaming' | 'cancelled' | 'error' | 'interrupted';

export interface Usage {
  inputTokens: number | null;
  outputTokens: number | null;
}

export interface WireError {
  code: string;
  message: string;
}

/** A file attached to a user message (its chip); the file is `GET /api/uploads/{id}`. */
export interface Attachment {
  id: string;
  name: string;
  kind: 'text' | 'image' | 'pdf';
  mediaType: string;
  size: number;
  width: number | null;
  height: number | null;
}

export interface Message {
  id: string;
  conversationId: string;
  parentId: string | null;
  role: Role;
  content: string;
  status: Status;
  isStreaming: boolean;
  streamCompleted: boolean;
  seq: number;
  model: string | null;
  provider: string | null;
  error: WireError | null;
  usage: Usage | null;
  attachments: Attachment[];
  createdAt: string;
  updatedAt: string;
  reasoning?: string;
  reasoningSeq?: number;
}

export interface Conversation {
  id: string;
  title: string | null;
  model: string | null;
  provider: string | null;
  systemPrompt: string | null;
  pinned: boolean;
  archived: boolean;
  currentLeafId: string | null;
  createdAt: string;
  updatedAt: string;
  hasActiveStream: boolean;
}

export interface ModelInfo {
  id: string;
  label?: string;
  [key: string]: unknown;
}

// Client -> server frames.
export interface StartChat {
  type: 'start_chat';
  prompt: string;
  conversationId?: string;
  model?: string;
  clientMessageId?: string;
  parentId?: string;
  attachments?: string[];
}
export interface Subscribe {
  type: 'subscribe';
  conversationId: string;
  afterMessageId?: string;
  afterSeq?: number;
}
export interface Unsubscribe {
  type: 'unsubscribe';
  conversationId: string;
}
export interface Stop {
  type: 'stop';
  conversationId: string;
  messageId?: string;
}
export interface Regenerate {
  type: 'regenerate';
  conversationId: string;
  messageId: string;
  model?: string;
  clientMessageId?: string;
}
export interface Edit {
  type: 'edit';
  conversationId: string;
  messageId: string;
  prompt: string;
  clientMessageId?: string;
}
export interface Continue {
  type: 'continue';
  conversationId: string;
  messageId: string;
  clientMessageId?: string;
}
export interface Ping {
  type: 'ping';
}
export type ClientFrame = StartChat | Subscribe | Unsubscribe | Stop | Regenerate | Edit | Continue | Ping;
export type GeneratingFrame = StartChat | Regenerate | Edit | Continue;

// Server -> client frames.
export interface Hello {
  type: 'hello';
  sessionId: string;
  userId: string;
  protocol: number;
}
export interface ConversationCreated {
  type: 'conversation_created';
  conversationId: string;
  messageId: string;
  userMessageId: string;
  clientMessageId?: string | null;
  conversation: Conversation;
  userMessage: Message;
  message?: Message;
}
export interface MessageStarted {
  type: 'message_started';
  conversationId: string;
  messageId: string;
  userMessageId: string;
  parentId?: string | null;
  clientMessageId?: string | null;
  userMessage?: Message;
  message?: Message;
}
export interface Reasoning {
  type: 'reasoning';
  conversationId: string;
  messageId: string;
  reasoningSeq: number;
  content: string;
}
export interface Text {
  type: 'text';
  conversationId: string;
  messageId: string;
  seq: number;
  content: string;
}
export interface Done {
  type: 'done';
  conversationId: string;
  messageId: string;
  seq: number;
  status: Status;
  usage?: Usage | null;
}
export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  conversationId?: string | null;
  messageId?: string | null;
}
export interface Catchup {
  type: 'catchup';
  conversation: Conversation;
  messages: Message[];
  hasActiveStream: boolean;
  activeMessageId: string | null;
  activeSeq: number | null;
}
export interface ConversationUpdated {
  type: 'conversation_updated';
  conversation: Conversation;
}
export interface ConversationDeleted {
  type: 'conversation_deleted';
  conversationId: string;
}
export interface Resync {
  type: 'resync';
  conversationId: string;
  reason?: string;
}
export interface Pong {
  type: 'pong';
}
export type ServerFrame =
  | Hello
  | ConversationCreated
  | MessageStarted
  | Reasoning
  | Text
  | Done
  | ErrorFrame
  | Catchup
  | ConversationUpdated
  | ConversationDeleted
  | Resync
  | Pong;

// Compile-time check that the frame unions and the type lists agree.
type Assert<T extends true> = T;
export type _ClientTypesAgree = Assert<ClientFrame['type'] extends ClientType ? (ClientType extends ClientFrame['type'] ? true : false) : false>;
export type _ServerTypesAgree = Assert<ServerFrame['type'] extends ServerType ? (ServerType extends ServerFrame['type'] ? true : false) : false>;
