// Types for duplex-hub.js, the browser client for the Duplex hub (docs/hub-protocol.md).
// `duplex serve` serves both at /duplex-hub.js and /duplex-hub.d.ts.

/** Where a message sits in its channel: offsets count 1, 2, 3 … within an epoch. */
export interface HubPosition {
  epoch: string;
  offset: number;
}

/** A message of a channel. */
export interface HubMessage<T = unknown> extends HubPosition {
  type: "message";
  channel: string;
  data: T;
  /** The publisher's client id. */
  from: string;
  /** ISO 8601, UTC. */
  time: string;
}

export interface HubMember<I = unknown> {
  client: string;
  info?: I;
}

/** Someone joined or left a channel this client is in (channels of up to 1,000 members). */
export interface HubPresenceEvent<I = unknown> {
  type: "joined" | "left";
  channel: string;
  client: string;
  info?: I;
}

export interface HubHistoryPage<T = unknown> {
  /** Oldest first. */
  messages: HubMessage<T>[];
  /** Older messages remain: ask again with `before`. */
  more: boolean;
  before: number | null;
}

export type HubState = "connecting" | "connected" | "reconnecting" | "closed";

export interface DuplexHubOptions {
  /** A JWT for hubs that require one (sent as ?access_token=). */
  token?: string | null;
  /** First wait before reconnecting, in ms (doubles on each failure, with jitter). Default 500. */
  minBackoff?: number;
  /** Longest wait between attempts, in ms. Default 10,000. */
  maxBackoff?: number;
  /** Publishes held while offline; past it publish() rejects with code "outbox_full". Default 100. */
  maxOutbox?: number;
  /** How long a request waits for its answer, in ms. Default 15,000. */
  requestTimeout?: number;
}

/** A refused or failed request. */
export class HubError extends Error {
  /** The hub's error code (bad_request, not_joined, forbidden, unavailable …) or one of the
   * client's: "offline", "timeout", "connection_lost" (sent, answer lost: it may have been done),
   * "outbox_full", "closed". */
  readonly code: string;
}

export interface DuplexHubEventMap {
  /** The connection's state changed; `code` is the close code when it was lost, `retryIn` the wait in ms. */
  state: CustomEvent<{ state: HubState; code?: number; retryIn?: number }>;
  /** Connected and every channel joined again (the outbox is sent next). */
  connected: CustomEvent<{ clientId: string }>;
  message: CustomEvent<HubMessage>;
  joined: CustomEvent<HubPresenceEvent>;
  left: CustomEvent<HubPresenceEvent>;
  /** After a reconnect, `missed` messages of the channel follow: nothing was lost. */
  recovered: CustomEvent<{ channel: string; missed: number }>;
  /** Messages could not be recovered: gone from history, or (`reset`) a new stream after a server restart. */
  gap: CustomEvent<{ channel: string; reset: boolean; epoch: string; offset: number }>;
  /** A publish waits in the outbox while offline. */
  queued: CustomEvent<{ channel: string; data: unknown; queued: number }>;
  /** An error not tied to a request of yours (a channel refused when joined again, for one). */
  error: CustomEvent<{ channel?: string; code: string; message: string }>;
}

export class DuplexHub extends EventTarget {
  /** @param url ws:// or wss:// URL of the hub (http(s):// works too). */
  constructor(url: string, options?: DuplexHubOptions);
  readonly state: HubState;
  /** This connection's client id (it changes on every reconnect). */
  readonly clientId: string | null;
  /** Publishes waiting for the connection. */
  readonly queued: number;
  /** Joins a channel, and again after every reconnect with recovery; resolves with its position now. */
  join(channel: string, info?: unknown): Promise<HubPosition>;
  leave(channel: string): Promise<void>;
  /** Resolves with the message's position once the hub has stored it; held in the outbox while offline. */
  publish(channel: string, data: unknown): Promise<HubPosition>;
  history<T = unknown>(channel: string, options?: { limit?: number; before?: number }): Promise<HubHistoryPage<T>>;
  presence<I = unknown>(channel: string): Promise<HubMember<I>[]>;
  /** Closes with 1000 and stops reconnecting; what waits in the outbox is rejected ("closed"). */
  close(): void;
  /** Drops the connection as a network failure would (it reconnects by itself). */
  drop(): void;
  addEventListener<K extends keyof DuplexHubEventMap>(type: K, listener: (this: DuplexHub, event: DuplexHubEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof DuplexHubEventMap>(type: K, listener: (this: DuplexHub, event: DuplexHubEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
