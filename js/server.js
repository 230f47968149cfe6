'use strict';
/**
 * `Server`: a minimalt server shaped like `net.Server`. `listen()` binds a UDP port in the
 * bridge child and starts a minimalt server for the configured service(s); every connection
 * a client opens arrives as 'connection' with a `Socket`. `record()` is the server's signed
 * public record (text), which is what a client needs to connect with 0-RTT.
 *
 * Events: 'listening', 'connection' (socket), 'record' (text, after a key rotation),
 * 'error', 'close'. As net's, `close()` stops new connections at once and emits 'close' when
 * the open ones have ended.
 */

const { EventEmitter } = require('node:events');
const net = require('node:net');
const { getBridge } = require('./bridge');
const { Socket, kAccepted } = require('./socket');
const { makeError, invalidArg } = require('./errors');

function normalizeServices(value, where) {
  if (value === undefined) return undefined;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((name) => typeof name === 'string' && name.length > 0)) {
    throw invalidArg(where, 'a service name or a non-empty array of names', value);
  }
  return list;
}

/** `advertise` on the pipe: a host, or `[host, port]`. */
function advertiseField(advertise) {
  if (advertise === undefined || advertise === null || typeof advertise === 'string') return advertise;
  if (typeof advertise === 'object' && typeof advertise.host === 'string' && Number.isInteger(advertise.port)) {
    return [advertise.host, advertise.port];
  }
  throw invalidArg('options.advertise', 'a host, or { host, port }', advertise);
}

class Server extends EventEmitter {
  /**
   * @param {object} [options]
   * @param {string|string[]} [options.service] the service name(s) to accept
   * @param {string} [options.identity] path of an identity file (`minimalt keygen`); default:
   *   a throw-away identity
   * @param {string|{host: string, port: number}} [options.advertise] the host put in the
   *   record (when bound to 0.0.0.0), or the host and port (behind a NAT or a relay)
   * @param {number} [options.keyLifetime] seconds an ephemeral key (and its record) lives
   * @param {boolean} [options.register=false] register the record with the directory
   *   (MINIMALT_DIRECTORY, MINIMALT_DIRECTORY_KEY) under the identity's name, before
   *   'listening' and after every key rotation; clients then connect({ name })
   * @param {boolean} [options.allowHalfOpen=false]
   * @param {boolean} [options.pauseOnConnect=false]
   * @param {(socket: Socket) => void} [connectionListener]
   */
  constructor(options, connectionListener) {
    super();
    if (typeof options === 'function') {
      connectionListener = options;
      options = {};
    }
    options = options ?? {};
    if (typeof options !== 'object') throw invalidArg('options', 'of type object', options);
    this._services = normalizeServices(options.service ?? options.services, 'options.service');
    this._listenOptions = {
      identity: options.identity,
      advertise: options.advertise,
      keyLifetime: options.keyLifetime,
      register: options.register,
    };
    this.allowHalfOpen = Boolean(options.allowHalfOpen);
    this.pauseOnConnect = Boolean(options.pauseOnConnect);
    this._socketOptions = {
      readableHighWaterMark: options.readableHighWaterMark,
      writableHighWaterMark: options.writableHighWaterMark,
    };
    if (typeof connectionListener === 'function') this.on('connection', connectionListener);
    /** True between 'listening' and close(). */
    this.listening = false;
    /** The server's Ed25519 identity key (hex), once listening. */
    this.identity = null;
    this._state = 'idle'; // idle | starting | listening | closing
    this._bridge = null;
    this._h = null;
    this._address = null;
    this._record = null;
    this._connections = new Set();
    this._closeAfterListen = false;
    this._referenced = true;
  }

  /**
   * Start accepting connections. listen([port[, host]][, callback]) or listen(options[,
   * callback]) with options { port = 0, host = '127.0.0.1', service }.
   * @returns {this}
   */
  listen(...args) {
    const callback = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
    let options = {};
    if (args[0] !== null && typeof args[0] === 'object') {
      options = args[0];
    } else {
      if (args[0] !== undefined && args[0] !== null) options.port = args[0];
      if (typeof args[1] === 'string') options.host = args[1];
    }
    const port = options.port === undefined ? 0 : Number(options.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      const error = new RangeError(`options.port should be >= 0 and < 65536. Received ${options.port}.`);
      error.code = 'ERR_SOCKET_BAD_PORT';
      throw error;
    }
    const services = normalizeServices(options.service ?? options.services, 'options.service') ?? this._services;
    if (services === undefined) {
      const error = new TypeError('a minimalt server needs a service name: createServer({ service }) or listen({ service })');
      error.code = 'ERR_MISSING_OPTION';
      throw error;
    }
    const advertise = advertiseField(options.advertise ?? this._listenOptions.advertise);
    if (this._state !== 'idle') {
      throw makeError('ERR_SERVER_ALREADY_LISTEN', 'Listen method has been called more than once without closing.');
    }
    this._services = services;
    if (callback) this.once('listening', callback);
    this._state = 'starting';
    const bridge = getBridge();
    this._bridge = bridge;
    bridge.attach(this);
    if (!this._referenced) bridge.setRef(this, false);
    const frame = {
      t: 'listen',
      services,
      host: options.host ?? '127.0.0.1',
      port,
      identity: options.identity ?? this._listenOptions.identity,
      advertise,
      keyLifetime: options.keyLifetime ?? this._listenOptions.keyLifetime,
      register: Boolean(options.register ?? this._listenOptions.register),
    };
    bridge.ready
      .then(() => {
        if (this._state !== 'starting') return null;
        this._h = bridge.allocHandle();
        bridge.register(this._h, this);
        return bridge.request({ ...frame, h: this._h });
      })
      .then(
        (info) => {
          if (info === null || this._state !== 'starting') return;
          this._state = 'listening';
          this.listening = true;
          this._address = { address: info.address[0], family: net.isIPv6(info.address[0]) ? 'IPv6' : 'IPv4', port: info.address[1] };
          this._record = info.record;
          this.identity = info.identity;
          this.emit('listening');
          if (this._closeAfterListen) this.close();
        },
        (error) => {
          if (this._state !== 'starting') return;
          this._release();
          this.emit('error', error);
        },
      );
    return this;
  }

  _onFrame(frame) {
    if (frame.t === 'accept') {
      this._onAccept(frame);
    } else if (frame.t === 'record') {
      this._record = frame.record;
      this.emit('record', frame.record);
    }
  }

  _onAccept(frame) {
    const socket = new Socket({
      allowHalfOpen: this.allowHalfOpen,
      ...this._socketOptions,
      [kAccepted]: { bridge: this._bridge, frame },
    });
    socket.server = this;
    this._connections.add(socket);
    socket.once('close', () => this._connections.delete(socket));
    if (this.pauseOnConnect) socket.pause();
    this.emit('connection', socket);
  }

  /** The bridge died (`error`: 'error' then 'close') or was shut down (null: 'close'). */
  _onBridgeError(error) {
    if (this._state === 'idle') return;
    const wasListening = this._state !== 'starting';
    this._release();
    if (error) this.emit('error', error);
    if (wasListening || !error) this.emit('close');
  }

  _release() {
    this._state = 'idle';
    this.listening = false;
    if (this._bridge !== null) {
      if (this._h !== null) this._bridge.unregister(this._h);
      this._bridge.detach(this);
    }
    this._bridge = null;
    this._h = null;
  }

  /**
   * Stop accepting connections; 'close' (and `callback`) once the open ones have ended.
   * @param {(error?: Error) => void} [callback] called with ERR_SERVER_NOT_RUNNING if the
   *   server was not listening
   * @returns {this}
   */
  close(callback) {
    if (typeof callback === 'function') {
      if (this._state === 'idle' || this._state === 'closing') {
        this.once('close', () => callback(makeError('ERR_SERVER_NOT_RUNNING', 'Server is not running.')));
      } else {
        this.once('close', callback);
      }
    }
    if (this._state === 'starting') {
      this._closeAfterListen = true;
      return this;
    }
    if (this._state !== 'listening') {
      if (this._state === 'idle') process.nextTick(() => this.emit('close'));
      return this;
    }
    this._state = 'closing';
    this.listening = false;
    const done = () => {
      if (this._state !== 'closing') return; // the bridge died meanwhile and said so
      this._release();
      this.emit('close');
    };
    this._bridge.request({ t: 'unlisten', h: this._h }).then(done, done);
    return this;
  }

  /** { address, family, port } of the UDP socket, or null when not listening. */
  address() {
    return this.listening ? { ...this._address } : null;
  }

  /**
   * The server's signed public record, text form ('mlt1:...'): give it to clients for
   * connect({ record }). It changes when the ephemeral key rotates ('record' event); older
   * records stay valid until their key expires. Null when not listening.
   * @returns {string|null}
   */
  record() {
    return this.listening ? this._record : null;
  }

  getConnections(callback) {
    process.nextTick(callback, null, this._connections.size);
    return this;
  }

  ref() {
    this._referenced = true;
    if (this._bridge !== null) this._bridge.setRef(this, true);
    return this;
  }

  unref() {
    this._referenced = false;
    if (this._bridge !== null) this._bridge.setRef(this, false);
    return this;
  }
}

module.exports = { Server };
