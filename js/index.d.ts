// Type declarations for the minimalt Node module (js/index.js). See docs/bridge.md.

import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';

/** An Error from minimalt: always has a `code` (net's where one fits, `EMLT...` otherwise). */
export interface MinimaltError extends Error {
  /**
   * ECONNREFUSED (the server refused the service), ECONNRESET (the peer reset the connection),
   * ETIMEDOUT (no answer within connectTimeout, or the tunnel's idle timeout), EADDRINUSE and
   * other errno names, ENOTFOUND, EMSGSIZE, ERR_INVALID_ARG_VALUE, or one of `errorCodes`.
   */
  code: string;
  /** The protocol's numeric error code, when the peer or the tunnel gave one (e.g. 0x10). */
  mltCode?: number;
  /** 'connect' for errors of opening a connection. */
  syscall?: string;
  /** The service the connection was for. */
  service?: string;
}

export interface SocketOptions {
  /** Keep our side open after the peer's end (default false: end it too, as net). */
  allowHalfOpen?: boolean;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
  highWaterMark?: number;
}

export interface ConnectOptions extends SocketOptions {
  /** The server's record: its 'mlt1:' text, its bytes, or the path of a file holding it. */
  record?: string | Uint8Array;
  /**
   * Or the server's name, resolved through the directory (MINIMALT_DIRECTORY and
   * MINIMALT_DIRECTORY_KEY, or the client configuration file); ENOTFOUND if it has none.
   */
  name?: string;
  /** The service to connect to. */
  service: string;
  /**
   * Data written before the server answers may ride in the tunnel's first packet (0-RTT).
   * Only for requests that are safe to execute twice. Default false (data waits one RTT).
   */
  retrySafe?: boolean;
  /** Pin the server's Ed25519 identity key (64 hex digits). */
  identity?: string;
  /** Milliseconds a new tunnel waits for the server's first answer (0: no limit). Default 10000. */
  connectTimeout?: number;
  /** As net: calls setTimeout(timeout) (an idle 'timeout' event, not a connect timeout). */
  timeout?: number;
}

/** The options form of write() and end(): write(data, { retrySafe }, callback). */
export interface WriteOptions {
  /**
   * true: these bytes are safe to execute twice and may ride in the 0-RTT first packet, even
   * on a connection opened without retrySafe. false: they (and what follows) wait for the
   * server's answer, even on a retrySafe connection. Omitted: the connection's retrySafe.
   */
  retrySafe?: boolean;
  /** The encoding of a string chunk (default: the stream's default encoding, utf8). */
  encoding?: BufferEncoding;
}

export interface SocketAddress {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/**
 * One minimalt connection, shaped like net.Socket. Events: 'connect', 'ready', 'data', 'end',
 * 'finish', 'drain', 'timeout', 'error', 'close' (hadError), 'datagram' (message), and on an
 * accepted socket 'migrate' (the client's new address, after it moved).
 *
 * 'connect' means what it means for net: the server accepted the connection (one round trip).
 * Writes need not wait for it: data leaves at once (in the 0-RTT first packet when retry-safe).
 * A refused connection, or one the server never answers, emits 'error' (ECONNREFUSED,
 * ETIMEDOUT; syscall 'connect') then 'close', never 'connect'.
 */
export class Socket extends Duplex {
  constructor(options?: SocketOptions);
  connect(options: ConnectOptions, connectListener?: () => void): this;

  /** True from connect() until 'connect'. */
  readonly connecting: boolean;
  /** True until the connection is open. */
  readonly pending: boolean;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: 'IPv4' | 'IPv6' | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly localFamily: 'IPv4' | 'IPv6' | undefined;
  /** The service this connection is for. */
  readonly service: string | undefined;
  /** The server that accepted this connection (server side), else null. */
  server: Server | null;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly readyState: 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed';
  readonly timeout: number | undefined;

  /** Emit 'timeout' after `ms` without activity (0 disables); the socket stays open. */
  setTimeout(ms: number, callback?: () => void): this;
  /** Accepted for net compatibility (minimalt paces and coalesces by itself). */
  setNoDelay(noDelay?: boolean): this;
  /** Accepted for net compatibility (tunnels keep themselves alive). */
  setKeepAlive(enable?: boolean, initialDelay?: number): this;
  /** End our side, then destroy once everything written has gone. */
  destroySoon(): void;
  /** Close with a reset: the peer gets ECONNRESET, unsent data is dropped. */
  resetAndDestroy(): this;
  ref(): this;
  unref(): this;
  /** The local UDP address of the tunnel. */
  address(): SocketAddress | Record<string, never>;

  /** Largest message sendDatagram() takes, in bytes (1100 with the default path size). */
  readonly maxDatagramSize: number;
  /**
   * Send one unreliable message on this connection (no retransmission, no ordering); the
   * peer's socket emits 'datagram'. Throws EMSGSIZE past maxDatagramSize.
   * @returns false if dropped before leaving (not open yet, or the bridge pipe congested)
   */
  sendDatagram(data: Uint8Array | string): boolean;
  /** The tunnel's counters (rtt, cwnd, bytes, losses) and this connection's. */
  getStats(): Promise<Record<string, unknown>>;

  write(chunk: any, callback?: (error: Error | null | undefined) => void): boolean;
  write(chunk: any, encoding: BufferEncoding, callback?: (error: Error | null | undefined) => void): boolean;
  /** Mark these bytes retry-safe (0-RTT) or not, whatever the connection's retrySafe. */
  write(chunk: string | Uint8Array, options: WriteOptions, callback?: (error: Error | null | undefined) => void): boolean;
  end(cb?: () => void): this;
  end(chunk: any, cb?: () => void): this;
  end(chunk: any, encoding: BufferEncoding, cb?: () => void): this;
  /** Write the last bytes with write()'s options, then end. */
  end(chunk: string | Uint8Array, options: WriteOptions, cb?: () => void): this;

  addListener(event: 'close', listener: (hadError: boolean) => void): this;
  addListener(event: 'connect' | 'ready' | 'end' | 'finish' | 'drain' | 'timeout', listener: () => void): this;
  addListener(event: 'data' | 'datagram', listener: (data: Buffer) => void): this;
  addListener(event: 'migrate', listener: (remote: SocketAddress) => void): this;
  addListener(event: 'error', listener: (error: MinimaltError) => void): this;
  addListener(event: string | symbol, listener: (...args: any[]) => void): this;
  on(event: 'close', listener: (hadError: boolean) => void): this;
  on(event: 'connect' | 'ready' | 'end' | 'finish' | 'drain' | 'timeout', listener: () => void): this;
  on(event: 'data' | 'datagram', listener: (data: Buffer) => void): this;
  on(event: 'migrate', listener: (remote: SocketAddress) => void): this;
  on(event: 'error', listener: (error: MinimaltError) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'close', listener: (hadError: boolean) => void): this;
  once(event: 'connect' | 'ready' | 'end' | 'finish' | 'drain' | 'timeout', listener: () => void): this;
  once(event: 'data' | 'datagram', listener: (data: Buffer) => void): this;
  once(event: 'migrate', listener: (remote: SocketAddress) => void): this;
  once(event: 'error', listener: (error: MinimaltError) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface ServerOptions {
  /** The service name(s) this server accepts. Required here or in listen(). */
  service?: string | string[];
  /** Same as service. */
  services?: string | string[];
  /** Path of an identity file (`minimalt keygen`); default: a throw-away identity. */
  identity?: string;
  /**
   * The host put in the record when listening on a wildcard address, or the host and port
   * clients should send to (behind a NAT, a port forward or a relay).
   */
  advertise?: string | { host: string; port: number };
  /** Seconds an ephemeral key (and the records naming it) lives; keys rotate at half of it. */
  keyLifetime?: number;
  /**
   * Register the record with the directory under the identity's name, before 'listening' and
   * after every key rotation (needs a named identity file and a configured directory).
   */
  register?: boolean;
  /** For accepted sockets (default false). */
  allowHalfOpen?: boolean;
  /** Accepted sockets start paused. */
  pauseOnConnect?: boolean;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

/** listen()'s options: where to bind, and the server options that may be given here instead. */
export interface ListenOptions
  extends Pick<ServerOptions, 'service' | 'services' | 'identity' | 'advertise' | 'keyLifetime' | 'register'> {
  /** UDP port (0: any free port). Default 0. */
  port?: number;
  /** Address to bind. Default '127.0.0.1'. */
  host?: string;
}

/**
 * A minimalt server, shaped like net.Server. Events: 'listening', 'connection' (socket),
 * 'record' (text, after a key rotation), 'error', 'close'.
 */
export class Server extends EventEmitter {
  constructor(options?: ServerOptions, connectionListener?: (socket: Socket) => void);
  constructor(connectionListener?: (socket: Socket) => void);

  readonly listening: boolean;
  /** The server's Ed25519 identity key (hex), once listening. */
  readonly identity: string | null;

  listen(port?: number, host?: string, listeningListener?: () => void): this;
  listen(port?: number, listeningListener?: () => void): this;
  listen(options: ListenOptions, listeningListener?: () => void): this;
  listen(listeningListener?: () => void): this;
  /** Stop accepting; 'close' once the open connections have ended. */
  close(callback?: (error?: MinimaltError) => void): this;
  address(): SocketAddress | null;
  /**
   * The server's signed public record, text form ('mlt1:...'): what a client passes to
   * connect({ record }). Changes on key rotation ('record' event); older records stay valid
   * until their key expires. Null when not listening.
   */
  record(): string | null;
  getConnections(callback: (error: Error | null, count: number) => void): this;
  ref(): this;
  unref(): this;

  on(event: 'connection', listener: (socket: Socket) => void): this;
  on(event: 'listening' | 'close', listener: () => void): this;
  on(event: 'record', listener: (record: string) => void): this;
  on(event: 'error', listener: (error: MinimaltError) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'connection', listener: (socket: Socket) => void): this;
  once(event: 'listening' | 'close', listener: () => void): this;
  once(event: 'record', listener: (record: string) => void): this;
  once(event: 'error', listener: (error: MinimaltError) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Open a connection; the Socket is returned at once (writes may start right away). */
export function connect(options: ConnectOptions, connectListener?: () => void): Socket;
/** Same as connect (the name Node's http client looks for). */
export function createConnection(options: ConnectOptions, connectListener?: () => void): Socket;
export function createServer(options?: ServerOptions, connectionListener?: (socket: Socket) => void): Server;
export function createServer(connectionListener?: (socket: Socket) => void): Server;

export const promises: {
  /** Resolves with the socket on 'connect' (the server accepted it), rejects with its coded error (ECONNREFUSED, ...). */
  connect(options: ConnectOptions): Promise<Socket>;
  /** createServer(options) and listen(options); resolves on 'listening'. */
  listen(options: ServerOptions & ListenOptions, connectionListener?: (socket: Socket) => void): Promise<Server>;
  /** close() and wait for the open connections to end. */
  close(server: Server): Promise<void>;
};

/**
 * Stop the bridge child now (open sockets are destroyed and servers closed) and wait for it
 * to exit. Not needed for a process to exit: an idle bridge is unref'd and stops by itself.
 */
export function shutdown(): Promise<void>;

/** The running bridge child, or null. */
export function bridgeInfo(): {
  pid: number | undefined;
  python: string;
  state: 'starting' | 'ready' | 'stopping' | 'dead';
  protocol: number | undefined;
  minimalt: string | undefined;
} | null;

/** The Python the bridge runs: MINIMALT_PYTHON, else this package's .venv, else python3. */
export function findPython(env?: NodeJS.ProcessEnv): string;

/** minimalt's own error codes and what they mean. */
export const errorCodes: Readonly<Record<string, string>>;
