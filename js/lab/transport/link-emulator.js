'use strict';
/**
 * The link emulator (`python -m minimalt.testing.link`) as a child process: a UDP relay
 * between clients and one server that adds delay, loss, reordering, a rate limit, ... Real
 * mode puts it between the two ends of a minimalt tunnel.
 *
 * The child runs the emulator's own `main()` behind a three-line prelude that ends it when
 * its stdin closes, so a Node process that dies, even by SIGKILL, leaves no relay behind
 * (the bridge child is tied to Node the same way).
 */

const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const { once } = require('node:events');

/** `link` option keys and the emulator flags they become (values are the flags' text). */
const FLAGS = {
  delay: '--delay', // one-way, '20ms' (or 'UP:DOWN', as every flag below but seed/loop/blackhole)
  jitter: '--jitter',
  loss: '--loss', // '2%' or 0.02
  burst: '--burst',
  gilbert: '--gilbert',
  reorder: '--reorder',
  reorderGap: '--reorder-gap',
  duplicate: '--duplicate',
  corrupt: '--corrupt',
  rate: '--rate', // '10mbit'
  queue: '--queue', // '64k'
  blackhole: '--blackhole', // '5s/2s'
  seed: '--seed',
  loop: '--loop',
};

const PRELUDE = [
  'import os, signal, sys, threading',
  // stdin reaches EOF when Node goes: stop as on Ctrl-C (the relay's SIGTERM handler). Raw
  // os.read, not sys.stdin: a daemon thread holding a buffered reader's lock aborts shutdown.
  'def watch():',
  '    while os.read(0, 4096): pass',
  '    os.kill(os.getpid(), signal.SIGTERM)',
  'threading.Thread(target=watch, daemon=True).start()',
  'from minimalt.testing.link import main',
  'sys.exit(main(sys.argv[1:]))',
].join('\n');

const READY_TIMEOUT_MS = 10000;
const EXIT_TIMEOUT_MS = 3000;

/** @returns {string[]} the emulator's flags for a `link` option object */
function linkArgs(link) {
  const args = [];
  for (const [key, value] of Object.entries(link ?? {})) {
    const flag = FLAGS[key];
    if (flag === undefined) {
      const error = new TypeError(`unknown link option "${key}" (known: ${Object.keys(FLAGS).join(', ')})`);
      error.code = 'ERR_INVALID_ARG_VALUE';
      throw error;
    }
    if (value === undefined || value === null) continue;
    args.push(flag, String(value));
  }
  return args;
}

/** A UDP port free on `host` now (it may be taken again before it is used: callers retry). */
async function pickUdpPort(host) {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    socket.bind(0, host);
    await once(socket, 'listening');
    return socket.address().port;
  } finally {
    socket.close();
  }
}

class LinkEmulator {
  /**
   * Start a relay and resolve once it listens (it printed "relaying HOST:PORT -> ...").
   * Rejects with code 'EADDRINUSE' if the listen port was taken, 'ERR_LAB_LINK' if the
   * child failed otherwise (its stderr in the message); the child is gone either way.
   * @param {object} options
   * @param {string} options.python the interpreter (the one the bridge uses)
   * @param {{host: string, port: number}} options.target the server
   * @param {{host: string, port: number}} [options.listen] where clients send (port 0: any)
   * @param {object} [options.link] delay, loss, rate, ... (see FLAGS)
   * @returns {Promise<LinkEmulator>}
   */
  static async start({ python, target, listen = { host: '127.0.0.1', port: 0 }, link = {} }) {
    const args = ['-c', PRELUDE, '--target', hostPort(target), '--listen', hostPort(listen), ...linkArgs(link)];
    const relay = new LinkEmulator(spawn(python, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    try {
      await relay._ready();
      return relay;
    } catch (error) {
      await relay.close();
      throw error;
    }
  }

  constructor(child) {
    this.child = child;
    this.pid = child.pid;
    /** Where clients send: { host, port }, once started. */
    this.address = null;
    this.stdout = '';
    this.stderr = '';
    this._spawnError = null;
    this._done = false;
    /** Resolves once the child is gone (or never started). */
    this._exited = new Promise((resolve) => {
      const done = (result) => {
        this._done = true;
        resolve(result);
      };
      child.once('close', (code, signal) => done({ code, signal }));
      child.once('error', (error) => {
        if (child.pid !== undefined) return; // a failed kill(): 'close' still comes
        this._spawnError = error;
        done({ code: null, signal: null });
      });
    });
    child.stdin.on('error', () => {}); // EPIPE if the child died first: its exit tells why
    child.stdout.setEncoding('utf8').on('data', (text) => {
      this.stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text) => {
      this.stderr += text;
    });
  }

  async _ready() {
    let check = null;
    let timer = null;
    const listening = new Promise((resolve) => {
      check = () => {
        const match = this.stdout.match(/^relaying (\S+):(\d+) -> /m);
        if (match !== null) resolve({ host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2]) });
      };
      this.child.stdout.on('data', check);
    });
    const failed = this._exited.then(({ code, signal }) => {
      if (this._spawnError !== null) {
        throw linkError(`link emulator (${this.child.spawnfile}) could not start: ${this._spawnError.message}`);
      }
      const why = this.stderr.trim().split('\n').at(-1);
      const error = linkError(`link emulator exited (${signal ?? `code ${code}`}) before listening: ${why}`);
      if (/address already in use/i.test(this.stderr)) error.code = 'EADDRINUSE';
      throw error;
    });
    const timedOut = new Promise((_, reject) => {
      timer = setTimeout(() => reject(linkError(`link emulator did not listen within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    });
    try {
      this.address = await Promise.race([listening, failed, timedOut]);
    } finally {
      clearTimeout(timer);
      this.child.stdout.off('data', check);
      failed.catch(() => {}); // the relay's later exit is close()'s business, not a rejection
    }
  }

  /** Stop the relay (SIGTERM, SIGKILL if it lingers) and resolve once it has exited. */
  async close() {
    if (this._done) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
    await this._exited;
    clearTimeout(timer);
  }
}

function hostPort({ host, port }) {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function linkError(message) {
  const error = new Error(message);
  error.code = 'ERR_LAB_LINK';
  return error;
}

module.exports = { LinkEmulator, linkArgs, pickUdpPort, FLAGS };
