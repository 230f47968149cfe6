'use strict';
/**
 * `Socket`: one minimalt connection as a `Duplex`, shaped like `net.Socket`.
 *
 * Events and their order are net's: 'connect' then 'ready' (client side), 'data', 'end'
 * (with `allowHalfOpen` false our side ends too), 'finish', 'timeout', 'drain', 'error'
 * then 'close' (with `hadError`). Plus 'datagram' (buf) for the connection's unreliable
 * message channel, see `sendDatagram()`.
 *
 * Credit (docs/bridge.md): a chunk passed to `_write` goes to the bridge as far as the
 * child's credit allows; its callback (and so 'drain') waits for the child to grant more,
 * which it does as the minimalt connection drains. The other way, the child sends only what
 * we granted, and we grant as the stream is read: a reader that stops reading stops the
 * remote writer, with bounded memory in Node, in the child and in between.
 *
 * 'connect' means what it means for net: the server accepted the connection (it acknowledged
 * the packet that opened it without refusing it, one round trip). Writes need not wait for it:
 * data leaves at once, in the tunnel's first packet (0-RTT) when retry-safe. A refused
 * connection, or one that gets no answer, emits 'error' (ECONNREFUSED, ETIMEDOUT, with
 * `syscall: 'connect'`) then 'close', never 'connect'.
 */

const { Duplex } = require('node:stream');
const net = require('node:net');
const { getBridge, asBuffer } = require('./bridge');
const { makeError, errorFromFrame, invalidArg } = require('./errors');

const kAccepted = Symbol('minimalt.accepted');

function family(address) {
  return net.isIPv6(address) ? 'IPv6' : 'IPv4';
}

class Socket extends Duplex {
  /**
   * @param {object} [options]
   * @param {boolean} [options.allowHalfOpen=false] keep our side open after the peer's end
   * @param {number} [options.readableHighWaterMark]
   * @param {number} [options.writableHighWaterMark]
   */
  constructor(options = {}) {
    super({
      allowHalfOpen: Boolean(options.allowHalfOpen),
      readableHighWaterMark: options.readableHighWaterMark,
      writableHighWaterMark: options.writableHighWaterMark,
      highWaterMark: options.highWaterMark,
      emitClose: false, // 'close' is emitted with hadError, as net does
      autoDestroy: true,
      decodeStrings: true,
    });
    /** True from connect() until 'connect'. */
    this.connecting = false;
    /** True until the connection is open (net's meaning). */
    this.pending = true;
    this.remoteAddress = undefined;
    this.remotePort = undefined;
    this.remoteFamily = undefined;
    this.localAddress = undefined;
    this.localPort = undefined;
    this.localFamily = undefined;
    /** The service this connection is for. */
    this.service = undefined;
    /** The net.Server-like server that accepted it (server side). */
    this.server = null;
    /** Bytes received. */
    this.bytesRead = 0;
    this._bytesSent = 0;
    this._bridge = null;
    this._h = null;
    this._sendCredit = 0;
    this._pendingWrite = null;
    this._retrySafeChunks = null; // WeakMap: chunk -> retrySafe, for write(data, { retrySafe })
    this._sentMode = null; // the retry-safe mark the child applies to our next data
    this._eofSent = false;
    this._finalCallback = null;
    this._received = 0;
    this._granted = 0;
    this._window = 0;
    this._remoteEnded = false;
    this._remoteDone = false; // the child reported error or closed: nothing more to send it
    this._resetOnDestroy = false;
    this._timeoutMs = 0;
    this._timer = null;
    this._wantDatagrams = false;
    this._onTimeout = () => this.emit('timeout');
    this.on('newListener', (event) => {
      if (event === 'datagram') this._subscribeDatagrams();
    });
    const accepted = options[kAccepted];
    if (accepted) this._adopt(accepted.bridge, accepted.frame);
  }

  // --- opening ---------------------------------------------------------------------------------

  /**
   * Open a connection (see `connect()` in index.js for the options).
   * @returns {this}
   */
  connect(options, connectListener) {
    if (options === null || typeof options !== 'object') throw invalidArg('options', 'of type object', options);
    const { record, name, service } = options;
    if (name !== undefined && record === undefined) {
      if (typeof name !== 'string' || name.length === 0) throw invalidArg('options.name', 'a non-empty string', name);
    } else if (typeof record !== 'string' && !(record instanceof Uint8Array)) {
      throw invalidArg('options.record', "a server record (the 'mlt1:' text, its bytes, or a record file path)", record);
    }
    if (typeof service !== 'string' || service.length === 0) {
      throw invalidArg('options.service', 'a non-empty string', service);
    }
    const { connectTimeout } = options;
    if (connectTimeout !== undefined && !(typeof connectTimeout === 'number' && connectTimeout >= 0)) {
      throw invalidArg('options.connectTimeout', 'a non-negative number of milliseconds', connectTimeout);
    }
    if (this._bridge !== null || this.destroyed) {
      throw makeError('ERR_SOCKET_CONNECTION_IN_PROGRESS', 'a minimalt Socket connects once; create a new one');
    }
    if (typeof connectListener === 'function') this.once('connect', connectListener);
    if (options.timeout) this.setTimeout(options.timeout);
    this.connecting = true;
    this.service = service;
    const bridge = getBridge();
    this._bridge = bridge;
    bridge.attach(this);
    bridge.ready
      .then(() => this._open(bridge, options))
      .catch((error) => this.destroy(error)); // never an unhandled rejection
    return this;
  }

  _open(bridge, options) {
    if (this.destroyed) return;
    this._h = bridge.allocHandle();
    bridge.register(this._h, this);
    this._initCredit(bridge);
    // A name goes where a record would: the child resolves it through the directory.
    const record = options.record ?? options.name;
    const frame = {
      t: 'connect',
      h: this._h,
      record: typeof record === 'string' ? record : Buffer.from(record),
      service: options.service,
      retrySafe: Boolean(options.retrySafe),
    };
    if (options.connectTimeout !== undefined) frame.timeout = options.connectTimeout / 1000;
    if (options.identity !== undefined) frame.identity = options.identity;
    // The reply comes once the server accepted the connection ('connect'), or as the error
    // that ended it first: then the child wants nothing more for the handle.
    bridge.request(frame).then(
      (info) => this._onConnect(info),
      (error) => {
        this._remoteDone = true;
        this.destroy(Object.assign(error, { syscall: 'connect', service: options.service }));
      },
    );
    if (this._wantDatagrams) bridge.send({ t: 'dgram-on', h: this._h });
    this._flushWrite();
    this._maybeFinal();
  }

  _onConnect(info) {
    if (this.destroyed) return;
    this.connecting = false;
    this.pending = false;
    this._setAddresses(info.remote, info.local);
    this.emit('connect');
    this.emit('ready');
    this._maybeFinal();
  }

  /** An accepted connection: the handle exists already. */
  _adopt(bridge, frame) {
    this._bridge = bridge;
    bridge.attach(this);
    this._h = frame.c;
    bridge.register(this._h, this);
    this._initCredit(bridge);
    this.service = frame.service;
    this.pending = false;
    this._setAddresses(frame.remote, frame.local);
  }

  _setAddresses(remote, local) {
    if (Array.isArray(remote)) {
      this.remoteAddress = remote[0];
      this.remotePort = remote[1];
      this.remoteFamily = family(remote[0]);
    }
    if (Array.isArray(local)) {
      this.localAddress = local[0];
      this.localPort = local[1];
      this.localFamily = family(local[0]);
    }
  }

  _initCredit(bridge) {
    this._sendCredit = bridge.peerWindow;
    // The window must exceed twice the readable high-water mark, or a full buffer could leave
    // the child without credit while Readable waits for a push before calling _read again.
    this._window = Math.max(bridge.window, 2 * this.readableHighWaterMark);
    this._granted = bridge.window;
    if (this._window > bridge.window) this._grant();
  }

  // --- frames from the bridge ------------------------------------------------------------------

  _onFrame(frame) {
    switch (frame.t) {
      case 'data': {
        if (this.destroyed) return;
        const buf = asBuffer(frame.d);
        this._received += buf.length;
        this.bytesRead += buf.length;
        this._touch();
        this.push(buf);
        return;
      }
      case 'credit':
        this._sendCredit += frame.n;
        this._flushWrite();
        return;
      case 'end':
        this._remoteEnded = true;
        if (!this.destroyed) this.push(null);
        return;
      case 'dgram':
        if (!this.destroyed) this.emit('datagram', asBuffer(frame.d));
        return;
      case 'error':
        this._remoteDone = true;
        this.destroy(errorFromFrame(frame, { service: this.service }));
        return;
      case 'closed':
        this._remoteDone = true;
        return;
      case 'address': {
        // The peer's tunnel moved to a new address (it answered the server's path check).
        if (this.destroyed) return;
        this._setAddresses(frame.remote, undefined);
        this.emit('migrate', { address: this.remoteAddress, family: this.remoteFamily, port: this.remotePort });
        return;
      }
      default:
    }
  }

  /** The bridge died (`error`) or was shut down (null). */
  _onBridgeError(error) {
    this._remoteDone = true;
    if (!this.destroyed) this.destroy(error ?? undefined);
  }

  // --- Duplex ----------------------------------------------------------------------------------

  _read() {
    this._grant();
  }

  /** Grant the child credit for what the application has consumed. */
  _grant() {
    if (this._h === null || this._remoteEnded || this._remoteDone || this.destroyed) return;
    const limit = this._received - this.readableLength + this._window;
    const n = limit - this._granted;
    if (n >= this._window / 4) {
      this._granted = limit;
      this._bridge.send({ t: 'credit', h: this._h, n });
    }
  }

  /**
   * As net's, plus `write(data, { retrySafe, encoding }[, callback])`: `retrySafe` true marks
   * these bytes safe to execute twice, so they may ride in the 0-RTT first packet even if the
   * connection was not opened with `retrySafe`; false keeps them (and what follows) for after
   * the server's answer even if it was. Without it, the connection's `retrySafe` applies.
   */
  write(chunk, encoding, callback) {
    if (encoding === null || typeof encoding !== 'object') return super.write(chunk, encoding, callback);
    const { retrySafe } = encoding;
    if (retrySafe !== undefined && typeof retrySafe !== 'boolean') {
      throw invalidArg('options.retrySafe', 'a boolean', retrySafe);
    }
    let buf = chunk;
    if (typeof chunk === 'string') buf = Buffer.from(chunk, encoding.encoding ?? this._writableState.defaultEncoding);
    else if (chunk instanceof Uint8Array) buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    // (a fresh Buffer object over the same bytes: the mark follows this write, not the memory)
    if (retrySafe !== undefined && buf instanceof Uint8Array) {
      if (this._retrySafeChunks === null) this._retrySafeChunks = new WeakMap();
      this._retrySafeChunks.set(buf, retrySafe);
    }
    return super.write(buf, callback);
  }

  /** As net's; `end(data, { retrySafe, encoding }[, callback])` marks the last data as write() does. */
  end(chunk, encoding, callback) {
    if (encoding === null || typeof encoding !== 'object') return super.end(chunk, encoding, callback);
    if (chunk !== null && chunk !== undefined) this.write(chunk, encoding);
    return super.end(callback);
  }

  /** The retry-safe mark of a chunk: true, false, or null (the connection's own). */
  _modeOf(chunk) {
    const marks = this._retrySafeChunks;
    const mark = marks === null ? undefined : marks.get(chunk);
    return mark === undefined ? null : mark;
  }

  _write(chunk, _encoding, callback) {
    this._pendingWrite = { pieces: [{ buf: chunk, mode: this._modeOf(chunk) }], index: 0, offset: 0, callback };
    this._flushWrite();
  }

  _writev(chunks, callback) {
    // Consecutive chunks with the same retry-safe mark travel together.
    const runs = [];
    for (const { chunk } of chunks) {
      const mode = this._modeOf(chunk);
      const last = runs[runs.length - 1];
      if (last !== undefined && last.mode === mode) last.parts.push(chunk);
      else runs.push({ mode, parts: [chunk] });
    }
    const pieces = runs
      .map(({ mode, parts }) => ({ buf: parts.length === 1 ? parts[0] : Buffer.concat(parts), mode }))
      .filter(({ buf }) => buf.length > 0);
    this._pendingWrite = { pieces, index: 0, offset: 0, callback };
    this._flushWrite();
  }

  /** Send as much of the pending write as the credit allows; its callback once all is sent. */
  _flushWrite() {
    const w = this._pendingWrite;
    if (w === null || this._h === null || this._remoteDone) return;
    const max = this._bridge.maxData;
    while (w.index < w.pieces.length) {
      const { buf, mode } = w.pieces[w.index];
      if (buf.length === 0) {
        w.index += 1;
        continue;
      }
      if (this._sendCredit <= 0) return;
      if (mode !== this._sentMode) {
        this._sentMode = mode;
        this._bridge.send({ t: 'retry-safe', h: this._h, v: mode });
      }
      const n = Math.min(this._sendCredit, buf.length - w.offset, max);
      const piece = n === buf.length ? buf : buf.subarray(w.offset, w.offset + n);
      w.offset += n;
      this._sendCredit -= n;
      this._bytesSent += n;
      if (w.offset < buf.length) {
        this._bridge.sendData('data', this._h, piece);
        continue;
      }
      w.index += 1;
      w.offset = 0;
      if (w.index === w.pieces.length) {
        // Done once the pipe has taken the last piece: the caller may then reuse the chunk.
        this._pendingWrite = null;
        this._touch();
        this._bridge.sendData('data', this._h, piece, () => {
          if (!this.destroyed) w.callback();
        });
        return;
      }
      this._bridge.sendData('data', this._h, piece);
    }
    // Nothing to send (an empty write).
    this._pendingWrite = null;
    w.callback();
  }

  _final(callback) {
    this._finalCallback = callback;
    this._maybeFinal();
  }

  _maybeFinal() {
    const callback = this._finalCallback;
    if (callback === null || this._h === null) return;
    // Our end leaves with the data, before 'connect' (a request and its end in the 0-RTT
    // first packet), but as with net, 'finish' comes after 'connect'.
    if (!this._eofSent) {
      this._eofSent = true;
      if (!this._remoteDone) this._bridge.send({ t: 'eof', h: this._h });
    }
    if (this.connecting) return;
    this._finalCallback = null;
    callback();
  }

  _destroy(error, callback) {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    const bridge = this._bridge;
    if (bridge !== null) {
      if (this._h !== null) {
        if (!this._remoteDone) {
          // close: our side ends after the data sent, unread data makes the peer reset;
          // abort (an error, or resetAndDestroy()): the peer sees a reset at once.
          bridge.send({ t: error || this._resetOnDestroy ? 'abort' : 'close', h: this._h });
        }
        bridge.unregister(this._h);
      }
      bridge.detach(this);
    }
    this._pendingWrite = null;
    this.connecting = false;
    callback(error);
    process.nextTick(() => this.emit('close', Boolean(error)));
  }

  // --- net.Socket's other methods --------------------------------------------------------------

  /** End our side, then destroy once everything written has gone (net's destroySoon). */
  destroySoon() {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Close with a reset: the peer gets ECONNRESET and unsent data is dropped. */
  resetAndDestroy() {
    this._resetOnDestroy = true;
    return this.destroy();
  }

  /**
   * Emit 'timeout' after `ms` without activity (0 disables), as net.Socket: the socket is
   * not closed.
   */
  setTimeout(ms, callback) {
    if (typeof ms !== 'number' || !(ms >= 0)) throw invalidArg('msecs', 'a non-negative number', ms);
    if (typeof callback === 'function') {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    this._timeoutMs = ms;
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    if (ms > 0 && !this.destroyed) {
      this._timer = setTimeout(this._onTimeout, ms);
      this._timer.unref();
    }
    return this;
  }

  get timeout() {
    return this._timeoutMs || undefined;
  }

  _touch() {
    if (this._timer !== null) this._timer.refresh();
  }

  /** Accepted for net compatibility; minimalt paces and coalesces by itself. */
  setNoDelay() {
    return this;
  }

  /** Accepted for net compatibility; tunnels have their own keep-alive. */
  setKeepAlive() {
    return this;
  }

  ref() {
    if (this._bridge !== null && !this.destroyed) this._bridge.setRef(this, true);
    return this;
  }

  unref() {
    if (this._bridge !== null && !this.destroyed) this._bridge.setRef(this, false);
    return this;
  }

  /** The local UDP address the tunnel uses, as net's address(). */
  address() {
    if (this.localAddress === undefined) return {};
    return { address: this.localAddress, family: this.localFamily, port: this.localPort };
  }

  get bytesWritten() {
    return this._bytesSent;
  }

  get readyState() {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  // --- unreliable datagrams --------------------------------------------------------------------

  /** Largest message `sendDatagram` takes (bytes). */
  get maxDatagramSize() {
    return this._bridge !== null ? this._bridge.maxDatagram : 1100;
  }

  /**
   * Send one unreliable message on this connection: no retransmission, no ordering. The
   * peer's socket emits 'datagram' with it, if it arrives.
   * @param {Buffer|Uint8Array|string} data at most `maxDatagramSize` bytes
   * @returns {boolean} false if it was dropped before leaving (not open yet, or the pipe to
   *   the bridge congested); true does not mean it will arrive
   */
  sendDatagram(data) {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (!(buf instanceof Uint8Array)) throw invalidArg('data', 'a Buffer, Uint8Array or string', data);
    if (buf.length > this.maxDatagramSize) {
      throw makeError('EMSGSIZE', `datagram of ${buf.length} bytes exceeds ${this.maxDatagramSize}`);
    }
    if (this._h === null || this.destroyed || this._remoteDone) return false;
    return this._bridge.sendDatagram(this._h, Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length));
  }

  _subscribeDatagrams() {
    if (this._wantDatagrams) return;
    this._wantDatagrams = true;
    if (this._h !== null && !this._remoteDone) this._bridge.send({ t: 'dgram-on', h: this._h });
  }

  // --- introspection ---------------------------------------------------------------------------

  /**
   * The tunnel's counters (rtt, cwnd, bytes, losses) and this connection's.
   * @returns {Promise<object>}
   */
  getStats() {
    if (this._h === null || this.destroyed || this._remoteDone) {
      return Promise.reject(makeError('ERR_SOCKET_CLOSED', 'Socket is closed'));
    }
    return this._bridge.request({ t: 'stats', h: this._h }).then((reply) => reply.stats);
  }
}

module.exports = { Socket, kAccepted };
