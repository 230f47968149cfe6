'use strict';
/**
 * The bridge: one Python child (`python -m minimalt.uvbridge`) per Node process, started
 * lazily by the first socket or server, speaking length-prefixed msgpack frames on a pipe of
 * its own (fd 3 in the child; stdout is not used, stderr carries its logs). docs/bridge.md is
 * the protocol.
 *
 * Sockets and servers are the bridge's *targets*: each holds a handle (Node allocates odd
 * ones, the child even ones for accepted connections) and receives its frames through
 * `_onFrame(frame)`; if the child dies every target gets `_onBridgeError(error)`. The
 * bridge keeps the event loop alive only while a referenced target is open; when the last
 * one closes it is unref'd at once and stopped after `idleMs`, so a process exits naturally
 * and a busy one keeps its tunnels (0-RTT) between connections. The child exits when the
 * pipe closes, so a Node process that dies, even by SIGKILL, leaves no Python behind.
 */

const { spawn, execFile } = require('node:child_process');
const { EventEmitter } = require('node:events');
const fs = require('node:fs');
const path = require('node:path');
const { FrameDecoder, FrameError, encodeFrame, encodeDataHeader, asBuffer } = require('./frame');
const { makeError, errorFromFrame } = require('./errors');
const { version } = require('../package.json');

/** Protocol versions this module speaks. */
const PROTOCOL_VERSIONS = [1];
/** Our initial credit for the child's data on each stream (bytes). */
const WINDOW = 512 * 1024;
/** Datagrams are dropped (like loss) while more than this many bytes wait to enter the pipe. */
const DATAGRAM_BACKLOG = 1 << 20;
/** Default time a bridge with no open handle stays up (ms); MINIMALT_BRIDGE_IDLE_MS overrides. */
const DEFAULT_IDLE_MS = 2000;
/** A child that has not said hello within this long is given up (ms). */
const HELLO_TIMEOUT_MS = 30000;
/** After the pipe is closed, a child still running this long is killed (ms). */
const STOP_KILL_MS = 10000;

/**
 * The Python to run: MINIMALT_PYTHON, else this package's `.venv` (a repository checkout),
 * else `python3` from PATH.
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {string}
 */
function findPython(env = process.env) {
  if (env.MINIMALT_PYTHON) return env.MINIMALT_PYTHON;
  const venv = path.join(__dirname, '..', '.venv', 'bin', 'python');
  if (fs.existsSync(venv)) return venv;
  return 'python3';
}

function noPython(python, why) {
  return makeError(
    'EMLTNOPYTHON',
    `minimalt runs its protocol in a Python child process, and ${why}. Install the Python ` +
      'side with `python3 -m pip install minimalt` (in a checkout of the repository: ' +
      '`make install`, or `python3 -m pip install -e .`), or set MINIMALT_PYTHON to a ' +
      `Python that has it (tried: ${python}).`,
  );
}

let current = null;

class Bridge extends EventEmitter {
  /**
   * @param {object} [options]
   * @param {string} [options.python] the interpreter (default: findPython())
   * @param {number} [options.idleMs] how long to stay up with no open handle
   */
  constructor(options = {}) {
    super();
    this.python = options.python ?? findPython();
    const envIdle = Number(process.env.MINIMALT_BRIDGE_IDLE_MS);
    this.idleMs = options.idleMs ?? (Number.isFinite(envIdle) && envIdle >= 0 ? envIdle : DEFAULT_IDLE_MS);
    /** 'starting' | 'ready' | 'stopping' | 'dead' */
    this.state = 'starting';
    /** The child's hello: pid, versions, window, maxData, maxDatagram. */
    this.info = null;
    /** Our receive window per stream, announced in our hello. */
    this.window = WINDOW;
    /** The child's receive window per stream (our initial send credit). */
    this.peerWindow = 0;
    this.maxData = 256 * 1024;
    this.maxDatagram = 1100;
    this.child = null;
    this.pipe = null;
    this._decoder = new FrameDecoder();
    this._requests = new Map();
    this._nextId = 1;
    this._nextHandle = 1;
    this._targets = new Map();
    this._open = new Set();
    this._unreferenced = new Set();
    this._idleTimer = null;
    this._helloTimer = null;
    this._corked = false;
    this._exited = false;
    this._deathError = null;
    this._stopped = null;
    this._uncork = () => {
      this._corked = false;
      if (this.pipe && !this.pipe.destroyed) this.pipe.uncork();
    };
    this.ready = new Promise((resolve, reject) => {
      this._resolveReady = resolve;
      this._rejectReady = reject;
    });
    // Every user of `ready` handles its rejection; this keeps a bridge nobody waited on quiet.
    this.ready.catch(() => {});
    this._start();
  }

  /** The child's pid (undefined before it started or if it could not). */
  get pid() {
    return this.child?.pid;
  }

  _start() {
    let child;
    try {
      child = spawn(
        this.python,
        ['-m', 'minimalt.uvbridge', '--fd', '3', '--parent-pid', String(process.pid)],
        {
          stdio: ['ignore', 'ignore', 'inherit', 'pipe'],
          env: { ...process.env, PYTHONUNBUFFERED: '1' },
          windowsHide: true,
        },
      );
    } catch (error) {
      process.nextTick(() => this._fail(noPython(this.python, `it could not be started (${error.message})`)));
      return;
    }
    this.child = child;
    child.on('error', (error) => {
      if (this.state === 'starting') {
        const why = error.code === 'ENOENT' ? 'was not found' : `could not be started (${error.code || error.message})`;
        this._fail(noPython(this.python, `${this.python} ${why}`));
      } else {
        this._fail(makeError('EMLTBRIDGE', `minimalt bridge process failed: ${error.message}`));
      }
    });
    child.on('exit', (code, signal) => this._onExit(code, signal));
    const pipe = child.stdio[3];
    this.pipe = pipe;
    if (!pipe) return; // spawn failed: the 'error' event follows
    pipe.on('data', (chunk) => this._onChunk(chunk));
    pipe.on('error', (error) => {
      // Before the handshake, a child that could not start or died (EPIPE on our hello) is
      // reported by its 'error' or 'exit' event, which finds out why.
      if (this.state === 'ready') {
        this._fail(makeError('EMLTBRIDGE', `minimalt bridge pipe failed: ${error.message}`));
      }
    });
    this._helloTimer = setTimeout(() => {
      this._fail(makeError('EMLTBRIDGE', `minimalt bridge (${this.python}) did not answer within ${HELLO_TIMEOUT_MS} ms`));
    }, HELLO_TIMEOUT_MS);
    this._helloTimer.unref();
    this.send({ t: 'hello', v: PROTOCOL_VERSIONS, agent: `minimalt-js/${version}`, window: this.window });
    this._updateRef();
  }

  // --- frames in -------------------------------------------------------------------------------

  _onChunk(chunk) {
    let frames;
    try {
      frames = this._decoder.push(chunk);
    } catch (error) {
      this._fail(makeError('EMLTBRIDGE', `minimalt bridge broke the pipe protocol: ${error.message}`));
      return;
    }
    for (const frame of frames) {
      if (this.state === 'dead') return;
      this._dispatch(frame);
    }
  }

  _dispatch(frame) {
    switch (frame.t) {
      case 'data':
      case 'credit':
      case 'end':
      case 'error':
      case 'closed':
      case 'dgram':
      case 'record':
      case 'address':
      case 'accept': {
        const target = this._targets.get(frame.h);
        if (target !== undefined) {
          target._onFrame(frame);
        } else if (frame.t === 'accept' && typeof frame.c === 'number') {
          this.send({ t: 'abort', h: frame.c }); // the server is gone: refuse the connection
        }
        if (frame.t === 'closed') this._targets.delete(frame.h);
        return;
      }
      case 'ok':
      case 'err': {
        const request = this._requests.get(frame.id);
        if (request !== undefined) {
          this._requests.delete(frame.id);
          if (frame.t === 'ok') request.resolve(frame);
          else request.reject(errorFromFrame(frame));
        } else if (frame.t === 'err' && frame.id === undefined) {
          this._fail(errorFromFrame(frame)); // a fatal error, such as no common version
        }
        return;
      }
      case 'hello':
        this._onHello(frame);
        return;
      default:
        // A newer child's frame we do not know: ignored (docs/bridge.md, "Versioning").
        return;
    }
  }

  _onHello(frame) {
    if (this.state !== 'starting') return;
    clearTimeout(this._helloTimer);
    if (!PROTOCOL_VERSIONS.includes(frame.v)) {
      this._fail(makeError('EMLTVERSION', `minimalt bridge chose protocol version ${frame.v}; this module speaks ${PROTOCOL_VERSIONS}`));
      return;
    }
    this.info = frame;
    this.peerWindow = frame.window;
    this.maxData = frame.maxData;
    this.maxDatagram = frame.maxDatagram;
    this.state = 'ready';
    this._resolveReady(this);
  }

  _onExit(code, signal) {
    this._exited = true;
    if (this.state === 'dead') return;
    if (this.state === 'stopping') {
      this.state = 'dead';
      this._cleanup();
      return;
    }
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (this.state === 'starting') {
      this._diagnose(how);
      return;
    }
    this._fail(makeError('EMLTBRIDGE', `minimalt bridge process ${this.child.pid} exited (${how})`));
  }

  /** The child died before its hello: find out whether Python or the package is missing. */
  _diagnose(how) {
    execFile(this.python, ['-c', 'import minimalt.uvbridge'], { timeout: 15000 }, (error, _stdout, stderr) => {
      const lines = String(stderr || '').trim().split('\n');
      const last = lines[lines.length - 1];
      if (error && error.code === 'ENOENT') {
        this._fail(noPython(this.python, `${this.python} was not found`));
      } else if (error && /ModuleNotFoundError|ImportError|No module named/.test(String(stderr))) {
        this._fail(noPython(this.python, `that Python cannot import it (${last})`));
      } else {
        this._fail(makeError('EMLTBRIDGE', `minimalt bridge (${this.python} -m minimalt.uvbridge) exited (${how}) before its handshake; its stderr says why`));
      }
    });
  }

  // --- frames out ------------------------------------------------------------------------------

  _write(buf, callback) {
    const pipe = this.pipe;
    if (!pipe || pipe.destroyed || !pipe.writable) return;
    // Frames written in one tick leave in one writev.
    if (!this._corked) {
      this._corked = true;
      pipe.cork();
      process.nextTick(this._uncork);
    }
    pipe.write(buf, callback);
  }

  /** @param {object} frame */
  send(frame) {
    if (this.state === 'dead') return;
    this._write(encodeFrame(frame));
  }

  /**
   * A `data` or `dgram` frame; `buf` is written as it is.
   * @param {'data'|'dgram'} kind
   * @param {number} h
   * @param {Buffer} buf
   * @param {() => void} [callback] once the pipe has taken `buf` (not called if the bridge
   *   dies first: its targets are failed instead)
   */
  sendData(kind, h, buf, callback) {
    if (this.state === 'dead') return;
    this._write(encodeDataHeader(kind, h, buf.length));
    this._write(buf, callback);
  }

  /**
   * One unreliable datagram; false if dropped because the pipe is congested.
   * @returns {boolean}
   */
  sendDatagram(h, buf) {
    if (this.state !== 'ready' || !this.pipe || this.pipe.writableLength > DATAGRAM_BACKLOG) return false;
    this.sendData('dgram', h, buf);
    return true;
  }

  /**
   * Send a request frame (an `id` is added) and wait for its `ok` (resolved with the frame)
   * or `err` (rejected with a coded Error).
   * @param {object} frame
   * @returns {Promise<object>}
   */
  request(frame) {
    return new Promise((resolve, reject) => {
      if (this.state === 'dead') {
        reject(this._deathError);
        return;
      }
      const id = this._nextId++;
      this._requests.set(id, { resolve, reject });
      this.send({ ...frame, id });
    });
  }

  // --- handles and lifetime --------------------------------------------------------------------

  /** A fresh handle (odd: allocated by Node). */
  allocHandle() {
    const h = this._nextHandle;
    this._nextHandle += 2;
    return h;
  }

  register(h, target) {
    this._targets.set(h, target);
  }

  unregister(h) {
    this._targets.delete(h);
  }

  /** `target` is open: the bridge stays up (and keeps the loop alive unless unref'd). */
  attach(target) {
    this._open.add(target);
    if (this._idleTimer !== null) {
      clearTimeout(this._idleTimer);
      this._idleTimer = null;
    }
    this._updateRef();
  }

  /** `target` closed; with no open target left, unref now and stop after idleMs. */
  detach(target) {
    this._open.delete(target);
    this._unreferenced.delete(target);
    this._updateRef();
    if (this._open.size === 0 && this.state !== 'dead' && this.state !== 'stopping' && this._idleTimer === null) {
      this._idleTimer = setTimeout(() => {
        this._idleTimer = null;
        if (this._open.size === 0) this.stop();
      }, this.idleMs);
      this._idleTimer.unref();
    }
  }

  /** Whether `target` keeps the event loop alive (net's ref()/unref()). */
  setRef(target, referenced) {
    if (referenced) this._unreferenced.delete(target);
    else if (this._open.has(target)) this._unreferenced.add(target);
    this._updateRef();
  }

  _updateRef() {
    const keep = this._open.size > this._unreferenced.size;
    for (const handle of [this.child, this.pipe]) {
      if (!handle) continue;
      if (keep) handle.ref();
      else handle.unref();
    }
  }

  /**
   * Close the pipe: the child lets open connections deliver what was written, then exits.
   * Sockets still open are destroyed and servers closed (without an error). Resolves when the
   * child has exited.
   * @returns {Promise<void>}
   */
  stop() {
    if (this._stopped) return this._stopped;
    if (current === this) current = null;
    if (this._idleTimer !== null) clearTimeout(this._idleTimer);
    this._idleTimer = null;
    if (this.state === 'dead' || this._exited || !this.child || this.child.pid === undefined) {
      this._fail(makeError('EMLTBRIDGE', 'minimalt bridge was shut down'));
      this._stopped = Promise.resolve();
      return this._stopped;
    }
    this._stopped = new Promise((resolve) => {
      this.child.once('exit', () => resolve());
    });
    const wasStarting = this.state === 'starting';
    this.state = 'stopping';
    if (wasStarting) this._rejectReady(makeError('EMLTBRIDGE', 'minimalt bridge was shut down'));
    // Open sockets are destroyed and servers closed, as by destroy() and close(): no error.
    this._failTargets(null);
    if (this.pipe && !this.pipe.destroyed) this.pipe.end();
    const killer = setTimeout(() => this.child.kill('SIGKILL'), STOP_KILL_MS);
    killer.unref();
    this._stopped.then(() => clearTimeout(killer));
    // Whoever awaits stop() must see it resolve: keep the loop alive until the child exits
    // (the SIGKILL timer bounds the wait), even when no socket holds a reference any more.
    this.child.ref();
    return this._stopped;
  }

  /** Fail every request and target: with `error`, or quietly (null) when shutting down. */
  _failTargets(error) {
    const rejection = error ?? makeError('EMLTBRIDGE', 'minimalt bridge was shut down');
    for (const request of this._requests.values()) request.reject(rejection);
    this._requests.clear();
    const targets = new Set([...this._targets.values(), ...this._open]);
    this._targets.clear();
    this._open.clear();
    this._unreferenced.clear();
    for (const target of targets) target._onBridgeError(error);
  }

  /** The bridge is unusable: every request and target fails with `error`. */
  _fail(error) {
    if (this.state === 'dead') return;
    const wasStarting = this.state === 'starting';
    this.state = 'dead';
    this._deathError = error;
    if (current === this) current = null;
    if (wasStarting) this._rejectReady(error);
    this._failTargets(error);
    if (this.child && !this._exited && this.child.pid !== undefined) this.child.kill('SIGKILL');
    this._cleanup();
    this.emit('dead', error);
  }

  _cleanup() {
    clearTimeout(this._helloTimer);
    if (this._idleTimer !== null) clearTimeout(this._idleTimer);
    this._idleTimer = null;
    if (this.pipe && !this.pipe.destroyed) this.pipe.destroy();
    this._updateRef();
    if (this.child) this.child.unref();
  }
}

/** The process's bridge, started if there is none (or the last one died or was stopped). */
function getBridge() {
  if (current === null) current = new Bridge();
  return current;
}

/** The running bridge, or null. */
function currentBridge() {
  return current;
}

/**
 * Stop the bridge now (open sockets are destroyed and servers closed) and wait for the child
 * to exit. The next socket or server starts a new one.
 * @returns {Promise<void>}
 */
function shutdown() {
  const bridge = current;
  current = null;
  return bridge ? bridge.stop() : Promise.resolve();
}

module.exports = {
  Bridge,
  PROTOCOL_VERSIONS,
  WINDOW,
  findPython,
  getBridge,
  currentBridge,
  shutdown,
  asBuffer,
  FrameError,
};
