'use strict';
/**
 * minimalt for Node.js: a `net`-like API over MinimaLT's 0-RTT encrypted tunnels.
 *
 *   const minimalt = require('minimalt');
 *   const server = minimalt.createServer({ service: 'echo' }, (socket) => socket.pipe(socket));
 *   server.listen(0, () => {
 *     const socket = minimalt.connect({ record: server.record(), service: 'echo' });
 *     socket.end('hello');
 *     socket.on('data', (data) => console.log(String(data)));
 *   });
 *
 * The protocol runs in Python: the first socket or server starts one child process
 * (`python -m minimalt.uvbridge`, found through MINIMALT_PYTHON, this checkout's .venv, or
 * python3) that all of them share; see docs/bridge.md.
 */

const { Socket } = require('./socket');
const { Server } = require('./server');
const bridge = require('./bridge');
const { CODES } = require('./errors');

/**
 * Open a connection. Returns the Socket at once; writes made before 'connect' are sent as
 * soon as they may (in the tunnel's first packet when `retrySafe`).
 * @param {object} options
 * @param {string|Uint8Array} [options.record] the server's record ('mlt1:...' text, its
 *   bytes, or the path of a file holding it), or
 * @param {string} [options.name] the server's name, resolved through the directory
 *   (MINIMALT_DIRECTORY, MINIMALT_DIRECTORY_KEY; one round trip unless cached)
 * @param {string} options.service the service name
 * @param {boolean} [options.retrySafe=false] data written before the server answers may
 *   ride in the 0-RTT first flight (only for requests safe to execute twice)
 * @param {string} [options.identity] pin the server's Ed25519 key (64 hex digits)
 * @param {number} [options.connectTimeout=10000] ms a new tunnel waits for the server
 *   (0: no limit); ETIMEDOUT after it
 * @param {number} [options.timeout] as net: setTimeout(timeout) (idle 'timeout' event)
 * @param {boolean} [options.allowHalfOpen=false]
 * @param {(this: Socket) => void} [connectListener] once on 'connect'
 * @returns {Socket}
 */
function connect(options, connectListener) {
  const socket = new Socket(options ?? {});
  return socket.connect(options, connectListener);
}

/**
 * @param {object|((socket: Socket) => void)} [options] see Server
 * @param {(socket: Socket) => void} [connectionListener]
 * @returns {Server}
 */
function createServer(options, connectionListener) {
  return new Server(options, connectionListener);
}

/**
 * Resolve with `emitter` on its first `event`, or reject with its first 'error'; whichever comes
 * first removes the other listener.
 */
function settleOn(emitter, event, resolve, reject) {
  const onError = (error) => {
    emitter.off(event, onEvent);
    reject(error);
  };
  const onEvent = () => {
    emitter.off('error', onError);
    resolve(emitter);
  };
  emitter.once('error', onError);
  emitter.once(event, onEvent);
}

/** Promise versions of connect and listen. They reject with the same coded errors. */
const promises = {
  /**
   * @param {object} options as connect()
   * @returns {Promise<Socket>} once 'connect'
   */
  connect(options) {
    return new Promise((resolve, reject) => {
      settleOn(connect(options), 'connect', resolve, reject);
    });
  },

  /**
   * Create a server and listen.
   * @param {object} options createServer's options plus listen's (port, host)
   * @param {(socket: Socket) => void} [connectionListener]
   * @returns {Promise<Server>} once 'listening'
   */
  listen(options, connectionListener) {
    return new Promise((resolve, reject) => {
      const server = createServer(options, connectionListener);
      settleOn(server, 'listening', resolve, reject);
      server.listen({ port: options?.port ?? 0, host: options?.host });
    });
  },

  /**
   * Close a server and wait for its connections to end.
   * @param {Server} server
   * @returns {Promise<void>}
   */
  close(server) {
    return new Promise((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
    });
  },
};

/**
 * The running bridge child: { pid, python, protocol, minimalt } or null.
 * @returns {object|null}
 */
function bridgeInfo() {
  const current = bridge.currentBridge();
  if (current === null) return null;
  return {
    pid: current.pid,
    python: current.python,
    state: current.state,
    protocol: current.info?.v,
    minimalt: current.info?.minimalt,
  };
}

module.exports = {
  connect,
  createConnection: connect,
  createServer,
  Socket,
  Server,
  promises,
  shutdown: bridge.shutdown,
  bridgeInfo,
  findPython: bridge.findPython,
  errorCodes: CODES,
};
