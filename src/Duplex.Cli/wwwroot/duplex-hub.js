// duplex-hub.js: a browser client for the Duplex hub (an ES module; the protocol is in
// docs/hub-protocol.md, the types in duplex-hub.d.ts). `duplex serve` serves it at /duplex-hub.js.
//
//   import { DuplexHub } from "/duplex-hub.js";
//   const hub = new DuplexHub("ws://127.0.0.1:8080/hub", { token });
//   hub.addEventListener("message", e => console.log(e.detail.data));
//   await hub.join("lobby", { name: "ada" });
//   await hub.publish("lobby", { text: "hello" });
//
// It reconnects by itself (exponential backoff with jitter) and joins its channels again with
// `since` and the stream's epoch, so what was missed is replayed: each message is delivered
// once, in offset order per channel. When it cannot be (gone from history, or a new epoch after
// a server restart) a "gap" event says so and messages go on from the new position.
//
// Publishing while offline: the publish waits in a bounded outbox (default 100) and is sent,
// in order, once the connection is back and the channels are joined again; its promise
// settles with the hub's answer. A publish over the bound is refused at once (rejected with
// code "outbox_full"). A publish that was sent and whose answer was lost with the connection
// is rejected with code "connection_lost": it may or may not have been published, and it is
// never sent twice.

const DEFAULTS = { token: null, minBackoff: 500, maxBackoff: 10000, maxOutbox: 100, requestTimeout: 15000 };

export class HubError extends Error {
  constructor(code, message) { super(message); this.name = "HubError"; this.code = code; }
}

export class DuplexHub extends EventTarget {
  #url; #options; #socket = null; #attempt = 0; #nextId = 1; #closed = false; #timer = null;
  #pending = new Map();   // id -> { resolve, reject, timer, onAnswer }
  #channels = new Map();  // channel -> { info, epoch, offset } (offset: the last message delivered)
  #outbox = [];           // publishes waiting for the connection: { channel, data, resolve, reject }
  #joinWaiters = new Map(); // channel -> joins asked for while offline, answered after the (re)join

  /** @param {string} url ws:// or wss:// URL of the hub */
  constructor(url, options = {}) {
    super();
    this.#options = { ...DEFAULTS, ...options };
    const u = new URL(url, typeof location === "undefined" ? undefined : location.href);
    if (u.protocol === "http:") u.protocol = "ws:";
    if (u.protocol === "https:") u.protocol = "wss:";
    if (this.#options.token) u.searchParams.set("access_token", this.#options.token);
    this.#url = u.toString();
    this.state = "connecting";
    this.clientId = null;
    this.#connect();
  }

  /** Messages waiting for the connection. */
  get queued() { return this.#outbox.length; }

  /** Joins a channel (again after every reconnect); resolves with its position { epoch, offset }. */
  async join(channel, info) {
    const known = this.#channels.get(channel);
    this.#channels.set(channel, { info, epoch: known?.epoch ?? null, offset: known?.offset ?? null });
    if (this.state !== "connected") return new Promise((resolve, reject) => this.#whenJoined(channel, resolve, reject));
    let answer;
    try {
      answer = await this.#request({ type: "join", channel, info });
    } catch (e) {
      if (!known && e.code !== "connection_lost") this.#channels.delete(channel); // refused: not joined again later
      throw e;
    }
    this.#joined(channel, answer);
    return { epoch: answer.epoch, offset: answer.offset };
  }

  /** Leaves a channel: its messages stop, and it is not joined again after a reconnect. */
  async leave(channel) {
    this.#channels.delete(channel);
    if (this.state === "connected") await this.#request({ type: "leave", channel });
  }

  /** Publishes data (any JSON); resolves with its position { epoch, offset } once the hub stored it. */
  publish(channel, data) {
    if (this.state === "connected" && this.#outbox.length === 0) return this.#publishNow(channel, data);
    if (this.#closed) return Promise.reject(new HubError("closed", "the hub client was closed"));
    if (this.#outbox.length >= this.#options.maxOutbox)
      return Promise.reject(new HubError("outbox_full", `offline with ${this.#outbox.length} messages waiting already`));
    return new Promise((resolve, reject) => {
      this.#outbox.push({ channel, data, resolve, reject });
      this.#emit("queued", { channel, data, queued: this.#outbox.length });
    });
  }

  /** A page of history, oldest first: { messages, more, before }. */
  async history(channel, { limit, before } = {}) {
    const body = { type: "history", channel };
    if (limit !== undefined) body.limit = limit;
    if (before !== undefined) body.before = before;
    const answer = await this.#request(body);
    return { messages: answer.messages, more: !!answer.more, before: answer.before ?? null };
  }

  /** The channel's members: [{ client, info }]. */
  async presence(channel) {
    return (await this.#request({ type: "presence", channel })).members;
  }

  /** Closes with 1000 and stops reconnecting; what waits in the outbox is rejected. */
  close() {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const waiting of this.#outbox.splice(0)) waiting.reject(new HubError("closed", "the hub client was closed"));
    if (this.#socket) this.#socket.close(1000);
    this.#setState("closed");
  }

  /** Drops the connection as a network failure would (it reconnects by itself): for trying recovery out. */
  drop() { if (this.#socket) this.#socket.close(4000, "dropped by the page"); }

  #emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  #setState(state, detail = {}) {
    if (this.state === state) return;
    this.state = state;
    this.#emit("state", { state, ...detail });
  }

  #connect() {
    if (this.#closed) return;
    this.#setState(this.#attempt ? "reconnecting" : "connecting");
    const socket = this.#socket = new WebSocket(this.#url);
    socket.onmessage = e => this.#receive(JSON.parse(e.data));
    socket.onclose = e => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      for (const [, request] of this.#pending) request.fail(new HubError("connection_lost", "the connection was lost before the answer: it may or may not have been done"));
      this.#pending.clear();
      if (this.#closed) return;
      // Exponential backoff with jitter, so that a restarted server is not hit by every page at once.
      const ceiling = Math.min(this.#options.maxBackoff, this.#options.minBackoff * 2 ** this.#attempt++);
      const delay = ceiling * (0.5 + Math.random() / 2);
      this.#setState("reconnecting", { code: e.code, retryIn: delay });
      this.#timer = setTimeout(() => this.#connect(), delay);
    };
  }

  async #receive(m) {
    switch (m.type) {
      case "welcome":
        this.clientId = m.client;
        this.#attempt = 0;
        await this.#rejoin();
        return;
      case "message": {
        const at = this.#channels.get(m.channel);
        if (!at) return;
        // Offsets compare within one epoch only: another epoch is a new stream, never a duplicate.
        if (at.epoch === m.epoch && at.offset !== null && m.offset <= at.offset) return;
        at.epoch = m.epoch; at.offset = m.offset;
        this.#emit("message", m);
        return;
      }
      case "joined": case "left":
        this.#emit(m.type, m);
        return;
      case "ok": case "error": {
        const request = this.#pending.get(String(m.id));
        if (!request) { if (m.type === "error") this.#emit("error", m); return; }
        this.#pending.delete(String(m.id));
        request.answer(m);
        return;
      }
    }
  }

  // Back (or first) on a connection: every channel joined again from its last position, then
  // the outbox, in order. Only then is the state "connected".
  async #rejoin() {
    for (const [channel, at] of [...this.#channels]) {
      const body = { type: "join", channel, info: at.info };
      if (at.offset !== null) { body.since = at.offset; body.epoch = at.epoch; }
      try {
        this.#joined(channel, await this.#request(body));
      } catch (e) {
        if (e.code === "connection_lost" || e.code === "offline" || e.code === "timeout") return; // the next connection starts over
        // Refused (a token that does not allow it, a bad name): not joined, and said so.
        this.#channels.delete(channel);
        for (const waiter of this.#joinWaiters.get(channel) ?? []) waiter.reject(e);
        this.#joinWaiters.delete(channel);
        this.#emit("error", { channel, code: e.code, message: e.message });
      }
    }
    this.#setState("connected");
    this.#emit("connected", { clientId: this.clientId });
    while (this.#outbox.length && this.state === "connected") {
      const next = this.#outbox.shift();
      this.#publishNow(next.channel, next.data).then(next.resolve, next.reject);
    }
  }

  #joined(channel, answer) {
    const at = this.#channels.get(channel);
    if (!at) return;
    if (answer.recovered === false) {
      const reset = at.epoch !== null && answer.epoch !== at.epoch;
      at.epoch = answer.epoch; at.offset = answer.offset;
      this.#emit("gap", { channel, reset, epoch: answer.epoch, offset: answer.offset });
    } else {
      if (answer.recovered === true) this.#emit("recovered", { channel, missed: answer.missed ?? 0 });
      if (at.epoch === null || at.epoch !== answer.epoch) { at.epoch = answer.epoch; at.offset = at.offset ?? answer.offset; }
    }
    for (const waiter of this.#joinWaiters.get(channel) ?? []) waiter.resolve({ epoch: answer.epoch, offset: answer.offset });
    this.#joinWaiters.delete(channel);
  }

  #whenJoined(channel, resolve, reject) {
    if (!this.#joinWaiters.has(channel)) this.#joinWaiters.set(channel, []);
    this.#joinWaiters.get(channel).push({ resolve, reject });
  }

  #publishNow(channel, data) {
    return this.#request({ type: "publish", channel, data }).then(answer => ({ epoch: answer.epoch, offset: answer.offset }));
  }

  #request(body) {
    return new Promise((resolve, reject) => {
      const socket = this.#socket;
      if (!socket || socket.readyState !== WebSocket.OPEN) { reject(new HubError("offline", "not connected")); return; }
      const id = String(this.#nextId++);
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new HubError("timeout", `no answer to ${body.type} within ${this.#options.requestTimeout} ms`));
      }, this.#options.requestTimeout);
      const settle = f => x => { clearTimeout(timer); f(x); };
      this.#pending.set(id, {
        answer: settle(m => m.type === "ok" ? resolve(m) : reject(new HubError(m.code, m.message))),
        fail: settle(reject),
      });
      socket.send(JSON.stringify({ ...body, id }));
    });
  }
}
