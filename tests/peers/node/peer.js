// Node `ws` as an interop peer for Duplex's tests.
//   node peer.js server           listen on 127.0.0.1 (port printed as "listening PORT"): /echo,
//                                 /fragments, /close4001, /ping
//   node peer.js client URL       run the scripted exchange against an echo endpoint, printing
//                                 "ok STEP" per step; exits 1 with "fail STEP: why" on the first failure
'use strict';
const { WebSocket, WebSocketServer } = require('ws');

const [mode, url] = process.argv.slice(2);
// DUPLEX_PEER_COMPRESS=1 turns permessage-deflate on (threshold 0: every message is compressed).
const deflate = process.env.DUPLEX_PEER_COMPRESS === '1' ? { threshold: 0 } : false;
// Never outlive the test that started us.
setTimeout(() => { console.log('fail timeout'); process.exit(2); }, 60000).unref();

if (mode === 'server') {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate, maxPayload: 64 * 1024 * 1024 });
  wss.on('listening', () => console.log(`listening ${wss.address().port}`));
  wss.on('connection', (ws, req) => {
    const path = req.url.split('?')[0];
    const echo = () => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    if (path === '/extensions') {
      ws.send(req.headers['sec-websocket-extensions'] ? `extensions:${ws.extensions}` : 'extensions:');
      echo();
    } else if (path === '/fragments') {
      ws.send('sent ', { fin: false });
      ws.send('in ', { fin: false });
      ws.send('pieces', { fin: true });
      echo();
    } else if (path === '/close4001') {
      ws.close(4001, 'node says bye');
    } else if (path === '/ping') {
      ws.on('pong', data => ws.send(`pong:${data.toString()}`));
      ws.ping('server ping');
      echo();
    } else {
      echo();
    }
  });
} else if (mode === 'client') {
  runClient(url).then(() => process.exit(0), err => { console.log(`fail ${err.message}`); process.exit(1); });
} else {
  console.error('usage: node peer.js server | client URL');
  process.exit(64);
}

function next(ws, event) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => { cleanup(); resolve(args); };
    const onClose = (code) => { cleanup(); reject(new Error(`closed with ${code} while waiting for ${event}`)); };
    const cleanup = () => { ws.off(event, onEvent); ws.off('close', onClose); };
    ws.once(event, onEvent);
    if (event !== 'close') ws.once('close', onClose);
  });
}

async function step(name, action) {
  try { await action(); } catch (err) { throw new Error(`${name}: ${err.message}`); }
  console.log(`ok ${name}`);
}

function expect(condition, what) { if (!condition) throw new Error(what); }

async function runClient(target) {
  const ws = new WebSocket(target, { perMessageDeflate: deflate, maxPayload: 64 * 1024 * 1024 });
  await step('open', () => next(ws, 'open'));
  await step('extensions', async () => expect(deflate ? ws.extensions.includes('permessage-deflate') : ws.extensions === '', `extensions were '${ws.extensions}'`));
  await step('text', async () => {
    ws.send('hello from node ✓');
    const [data, isBinary] = await next(ws, 'message');
    expect(!isBinary && data.toString() === 'hello from node ✓', 'text echo differs');
  });
  await step('binary', async () => {
    ws.send(Buffer.from([0, 1, 2, 255]));
    const [data, isBinary] = await next(ws, 'message');
    expect(isBinary && Buffer.compare(data, Buffer.from([0, 1, 2, 255])) === 0, 'binary echo differs');
  });
  await step('16MiB', async () => {
    const big = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    ws.send(big);
    const [data, isBinary] = await next(ws, 'message');
    expect(isBinary && Buffer.compare(data, big) === 0, '16 MiB echo differs');
  });
  await step('fragmented', async () => {
    ws.send('frag', { fin: false });
    ws.send('ment', { fin: false });
    ws.send('ed', { fin: true });
    const [data, isBinary] = await next(ws, 'message');
    expect(!isBinary && data.toString() === 'fragmented', `fragmented echo was '${data}'`);
  });
  await step('ping', async () => {
    ws.ping('are you there');
    const [data] = await next(ws, 'pong');
    expect(data.toString() === 'are you there', 'pong payload differs');
  });
  await step('close', async () => {
    ws.close(4000, 'bye');
    const [code] = await next(ws, 'close');
    expect(code === 4000, `closed with ${code}`);
  });
}
