// Type declarations for minimalt's reliability and congestion-control lab (js/lab/index.js).

import { EventEmitter } from 'node:events';
import { Socket } from 'node:dgram';

/** The datagram channel a Sender or Receiver runs over (see js/lab/transport.js). */
export interface Transport {
  send(buf: Buffer): void;
  onMessage(callback: (buf: Buffer) => void): void;
  /** Monotonic time, milliseconds. */
  now(): number;
  /** Arm the endpoint's single timer at absolute time `at` (ms); null disarms it. */
  setTimer(at: number | null, callback: () => void): void;
  close?(): void;
  timerGranularityMs?: number;
}

export interface SentPacket {
  packetNumber: number;
  timeSent: number;
  size: number;
  offset: number;
  length: number;
  fin: boolean;
}

export interface RttEstimator {
  latestRtt: number;
  minRtt: number;
  smoothedRtt: number;
  rttVar: number;
  hasSample: boolean;
}

export interface RateSample {
  deliveryRate: number;
  delivered: number;
  interval: number;
  isAppLimited: boolean;
  priorDelivered: number;
  newlyDelivered: number;
  valid: boolean;
}

export interface ControllerOptions {
  maxDatagramSize?: number;
  initialWindow?: number;
  rng?: Prng | null;
}

/** Base class of congestion controllers: override the events, read cwnd and pacing rate. */
export class CongestionController {
  constructor(options?: ControllerOptions);
  mss: number;
  initialWindow: number;
  minimumWindow: number;
  cwnd: number;
  ssthresh: number;
  recoveryStartTime: number | null;
  inRecovery: boolean;
  smoothedRtt: number | null;
  minRtt: number;
  latestRtt: number | null;
  readonly congestionWindow: number;
  /** Bytes per second (Infinity: no pacing). */
  readonly pacingRate: number;
  readonly state: string;
  onPacketSent(event: { time: number; packet: SentPacket; bytesInFlight: number }): void;
  onRttSample(event: { time: number; rtt: RttEstimator }): void;
  onLoss(event: { time: number; packets: SentPacket[]; persistentCongestion: boolean; bytesInFlight: number }): void;
  onAck(event: {
    time: number;
    packets: SentPacket[];
    bytesInFlight: number;
    rateSample: RateSample;
    rttSample: number | null;
    rtt: RttEstimator;
    appLimited: boolean;
  }): void;
  onAppLimited(event: { time: number; bytesInFlight: number }): void;
  sentBeforeRecovery(timeSent: number): boolean;
}

export function registerController(name: string, controller: new (options?: ControllerOptions) => CongestionController): void;
export function createController(name: string, options?: ControllerOptions): CongestionController;
export function listControllers(): string[];
export const controllers: {
  NewReno: typeof CongestionController;
  Cubic: typeof CongestionController;
  Bbr: typeof CongestionController;
  Vegas: typeof CongestionController;
};

export interface SenderOptions {
  transport: Transport;
  controller: string | CongestionController;
  data?: Buffer;
  length?: number;
  maxDatagramSize?: number;
  maxAckDelay?: number;
  pacing?: boolean;
  burstPackets?: number;
  qlog?: { event(name: string, data: object): void; packets?: boolean } | null;
}

export class Sender extends EventEmitter {
  constructor(options: SenderOptions);
  readonly bytesInFlight: number;
  readonly congestionWindow: number;
  readonly pacingRate: number;
  readonly complete: boolean;
  readonly rtt: RttEstimator;
  readonly stats: {
    packetsSent: number;
    bytesSent: number;
    packetsLost: number;
    bytesLost: number;
    bytesRetransmitted: number;
    ptoCount: number;
    acksReceived: number;
    malformed: number;
  };
  start(): void;
  stop(): void;
  on(event: 'complete', listener: () => void): this;
  on(event: 'rtt', listener: (latestRtt: number, now: number) => void): this;
}

export class Receiver extends EventEmitter {
  constructor(options: { transport: Transport; collect?: boolean; maxAckDelay?: number; ackElicitingThreshold?: number });
  readonly ended: boolean;
  readonly stats: {
    packetsReceived: number;
    packetsOutOfOrder: number;
    bytesReceived: number;
    acksSent: number;
    malformed: number;
    bytesDelivered: number;
  };
  data(): Buffer;
  close(): void;
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'end', listener: () => void): this;
}

export interface Prng {
  readonly seed: string;
  nextUint32(): number;
  random(): number;
  uniform(lo: number, hi: number): number;
  chance(probability: number): boolean;
  fork(label: string): Prng;
}
export function createPrng(seed: string | number): Prng;

export class Simulator {
  now(): number;
  at(time: number, fn: () => void): object;
  after(delay: number, fn: () => void): object;
  cancel(handle: object): void;
  runUntil(time: number): void;
  runWhile(done: () => boolean, limit?: number): boolean;
  eventsRun: number;
}

export class Network {
  constructor(sim: Simulator, config: object, rng: Prng, observer?: object);
  attachFlow(flow: number, options?: { extraDelayMs?: number }): { sender: Transport; receiver: Transport };
  apply(change: object): void;
  schedule(changes: object[]): void;
}

export class Link {
  constructor(sim: Simulator, config: object, rng: Prng, hooks: { deliver(packet: object): void; onDrop?(packet: object, reason: string): void; onTransmit?(packet: object, start: number, end: number): void });
  setBandwidth(mbps: number): void;
  setDelay(ms: number): void;
  setLoss(config: number | object): void;
  setBlackhole(on: boolean): void;
  send(packet: { size: number }): void;
}

export class UdpTransport implements Transport {
  constructor(socket: Socket, peer: { address: string; port: number });
  socket: Socket;
  sendErrors: number;
  send(buf: Buffer): void;
  onMessage(callback: (buf: Buffer) => void): void;
  now(): number;
  setTimer(at: number | null, callback: () => void): void;
  close(): void;
}
export function createUdpPair(options?: { host?: string }): Promise<{ a: UdpTransport; b: UdpTransport; close(): Promise<void> }>;
export function assertTransport<T>(transport: T): T;

/** Link emulator settings (`python -m minimalt.testing.link` flags, as text: 'X' both ways, 'UP:DOWN'). */
export interface LinkEmulatorOptions {
  delay?: string; // one way, '20ms'
  jitter?: string;
  loss?: string | number; // '2%' or 0.02
  burst?: string | number;
  gilbert?: string;
  reorder?: string | number;
  reorderGap?: string;
  duplicate?: string | number;
  corrupt?: string | number;
  rate?: string; // '10mbit'
  queue?: string; // '64k'
  blackhole?: string; // '5s/2s'
  seed?: string | number;
  loop?: 'select' | 'uvloop' | 'asyncio';
}
export class MinimaltTransport implements Transport {
  constructor(socket: import('../index').Socket);
  socket: import('../index').Socket;
  maxDatagramSize: number;
  sendErrors: number;
  timerGranularityMs: number;
  send(buf: Buffer): void;
  onMessage(callback: (buf: Buffer) => void): void;
  now(): number;
  setTimer(at: number | null, callback: () => void): void;
  close(): void;
}
export function createMinimaltPair(options?: {
  service?: string;
  host?: string;
  link?: LinkEmulatorOptions | null;
  timeoutMs?: number;
}): Promise<{
  a: MinimaltTransport;
  b: MinimaltTransport;
  relay: { pid: number; address: { host: string; port: number } } | null;
  close(): Promise<void>;
}>;
export function runMinimaltTransfer(options: {
  data: Buffer;
  controller?: string;
  link?: LinkEmulatorOptions | null;
  timeoutMs?: number;
}): Promise<{
  received: Buffer;
  elapsedMs: number;
  sender: { rttMs: { min: number; smoothed: number; latest: number }; sendErrors: number; [counter: string]: any };
  receiver: object;
  relay: { pid: number; address: { host: string; port: number } } | null;
}>;

export interface RunResult {
  name: string;
  summary: any;
  series: any;
  trace: string | null;
  eventsRun: number;
}

export interface RunScenarioOptions {
  outDir?: string | null;
  trace?: boolean;
  plots?: boolean;
  seed?: number | string;
  durationMs?: number;
  onProgress?: (progress: { run: string; runIndex: number; runs: number; simMs: number; durationMs: number }) => void;
}

export function runScenario(
  scenario: object,
  options?: RunScenarioOptions,
): Promise<{ scenario: any; summary: any; runs: RunResult[]; plots: Record<string, string> | null; files: string[] }>;
export function loadScenario(file: string): object;
export function normalizeScenario(scenario: object, overrides?: { seed?: number | string; durationMs?: number }): any;
export function runExperiment(scenario: any, run: { name: string; flows: object[] }, options?: { trace?: boolean; onProgress?: (p: { simMs: number; durationMs: number }) => void }): RunResult;
export function runUdpTransfer(options: { data: Buffer; controller?: string; host?: string; timeoutMs?: number }): Promise<{
  received: Buffer;
  elapsedMs: number;
  sender: object;
  receiver: object;
}>;
export function renderPlots(results: RunResult[]): Promise<Record<string, string>>;
export const PRESETS: Readonly<Record<string, object>>;
export class ScenarioError extends Error {
  code: 'ERR_LAB_SCENARIO';
}
export class QlogTrace {
  constructor(options: { title: string; clock: () => number; packets?: boolean; configuration?: object });
  packets: boolean;
  event(name: string, data: object, groupId?: string): void;
  forGroup(groupId: string): { packets: boolean; event(name: string, data: object): void };
  toString(): string;
}
export function parseQlog(text: string): any[];
export function jainIndex(xs: number[]): number | null;
export function percentile(sorted: ArrayLike<number>, p: number): number | null;
