'use strict';
/**
 * One simulated run: build the network and the flows of a normalised scenario, run the
 * virtual clock to the end, and measure. Returns the summary, the time series for plots,
 * and (if asked) the qlog trace.
 */

const { Simulator } = require('../sim/simulator');
const { Network } = require('../sim/network');
const { createPrng } = require('../sim/prng');
const { expandSchedule } = require('../sim/schedule');
const { Sender } = require('../reliability/sender');
const { Receiver } = require('../reliability/receiver');
const { createController } = require('../cc');
const { QlogTrace } = require('./trace');
const { describe, jainIndex, round } = require('./stats');

/** Simulated time between progress reports, ms. */
const PROGRESS_STEP_MS = 1000;

/**
 * @param {object} scenario normalised (see run/scenario.js)
 * @param {{name: string, flows: object[]}} run one of scenario.runs
 * @param {object} [options]
 * @param {boolean} [options.trace=false] build the qlog trace (returned as a string)
 * @param {(progress: {simMs: number, durationMs: number}) => void} [options.onProgress]
 * @returns {{name: string, summary: object, series: object, trace: string|null, eventsRun: number}}
 */
function runExperiment(scenario, run, { trace = false, onProgress } = {}) {
  const sim = new Simulator();
  const rng = createPrng(scenario.seed);
  const { fromMs, toMs } = scenario.measure;
  const durationMs = scenario.durationMs;
  const inWindow = (t) => t >= fromMs && t <= toMs;
  const qlog = trace
    ? new QlogTrace({
        title: `${scenario.name}: ${run.name}`,
        clock: () => sim.now(),
        packets: scenario.trace.packets,
        configuration: { seed: scenario.seed, link: scenario.link, flows: run.flows },
      })
    : null;

  const link = {
    busyMs: 0,
    drops: { queue_full: 0, aqm: 0, loss: 0, blackhole: 0 },
    queueDelay: [],
  };
  const flows = run.flows.map((config) => ({
    config,
    owd: [],
    queueDelay: [],
    rtt: [],
    drops: 0,
    rttSum: 0,
    rttCount: 0,
    deliveredAtFrom: 0,
    deliveredAtTo: null,
    completionMs: null,
    series: [],
    lastDelivered: 0,
  }));

  const network = new Network(sim, scenario.link, rng.fork('network'), {
    onDrop(packet, reason, direction) {
      if (direction === 'forward' && inWindow(sim.now())) {
        link.drops[reason]++;
        flows[packet.flow].drops++;
      }
      if (qlog) {
        qlog.event('minimalt:packet_dropped', { direction, reason, size: packet.size }, `flow${packet.flow}`);
      }
    },
    onTransmit(packet, start, end) {
      const busy = Math.min(end, toMs) - Math.max(start, fromMs);
      if (busy > 0) link.busyMs += busy;
      if (inWindow(start)) {
        const delay = start - packet.enqueuedAt;
        link.queueDelay.push(delay);
        flows[packet.flow].queueDelay.push(delay);
      }
    },
    onArrive(packet) {
      const now = sim.now();
      if (inWindow(now)) flows[packet.flow].owd.push(now - packet.sentAt);
    },
    onChange(change) {
      if (qlog) qlog.event('minimalt:link_updated', change);
    },
  });
  network.schedule(
    expandSchedule(
      scenario.link.schedule,
      scenario.link.variableBandwidth,
      durationMs,
      scenario.link.bandwidthMbps,
      rng.fork('schedule'),
    ),
  );

  for (const flow of flows) {
    const { id, controller, startMs, stopMs, bytes, extraDelayMs } = flow.config;
    const ends = network.attachFlow(id, { extraDelayMs });
    flow.sender = new Sender({
      transport: ends.sender,
      controller: createController(controller, { rng: rng.fork(`flow${id}/controller`) }),
      length: bytes ?? Infinity,
      qlog: qlog ? qlog.forGroup(`flow${id}`) : null,
    });
    flow.receiver = new Receiver({ transport: ends.receiver });
    flow.sender.on('rtt', (rtt, now) => {
      if (inWindow(now)) flow.rtt.push(rtt);
      flow.rttSum += rtt;
      flow.rttCount++;
    });
    flow.sender.on('complete', () => {
      flow.completionMs = sim.now();
    });
    sim.at(startMs, () => flow.sender.start());
    if (stopMs < durationMs) sim.at(stopMs, () => flow.sender.stop());
  }

  sim.at(fromMs, () => {
    for (const flow of flows) flow.deliveredAtFrom = flow.receiver.stats.bytesDelivered;
  });
  sim.at(toMs, () => {
    for (const flow of flows) flow.deliveredAtTo = flow.receiver.stats.bytesDelivered;
  });

  const capacity = [];
  const sample = () => {
    const now = sim.now();
    const t = round(now / 1000, 3);
    capacity.push({ t, mbps: network.forward.blackhole ? 0 : network.forward.bandwidthMbps });
    for (const flow of flows) {
      const { startMs, stopMs } = flow.config;
      const delivered = flow.receiver.stats.bytesDelivered;
      // Sample from the first interval after the start to the interval holding the end.
      const endMs = Math.min(stopMs, flow.completionMs ?? Infinity);
      if (now > startMs && now - scenario.sampleMs <= endMs) {
        const sender = flow.sender;
        flow.series.push({
          t,
          cwnd: Math.round(sender.congestionWindow),
          inflight: sender.bytesInFlight,
          srtt: sender.rtt.hasSample ? round(sender.rtt.smoothedRtt, 3) : null,
          rtt: flow.rttCount > 0 ? round(flow.rttSum / flow.rttCount, 3) : null,
          throughputMbps: round(((delivered - flow.lastDelivered) * 8) / (scenario.sampleMs * 1000), 4),
        });
      }
      flow.lastDelivered = delivered;
      flow.rttSum = 0;
      flow.rttCount = 0;
    }
    if (now + scenario.sampleMs <= durationMs) sim.at(now + scenario.sampleMs, sample);
  };
  sim.at(0, sample);

  for (let t = 0; t < durationMs; ) {
    t = Math.min(t + PROGRESS_STEP_MS, durationMs);
    sim.runUntil(t);
    if (onProgress) onProgress({ simMs: t, durationMs });
  }
  for (const flow of flows) {
    flow.sender.stop();
    flow.receiver.close();
  }

  return {
    name: run.name,
    summary: summarize(scenario, run, link, flows),
    series: {
      sampleMs: scenario.sampleMs,
      capacity,
      flows: flows.map((flow) => ({ id: flow.config.id, controller: flow.config.controller, points: flow.series })),
    },
    trace: qlog ? qlog.toString() : null,
    eventsRun: sim.eventsRun,
  };
}

function summarize(scenario, run, link, flows) {
  const { fromMs, toMs } = scenario.measure;
  const flowSummaries = flows.map((flow) => {
    const { id, controller, startMs, stopMs } = flow.config;
    const sender = flow.sender.stats;
    const activeFrom = Math.max(fromMs, startMs);
    const activeTo = Math.min(toMs, stopMs, flow.completionMs ?? Infinity);
    const delivered = (flow.deliveredAtTo ?? flow.receiver.stats.bytesDelivered) - flow.deliveredAtFrom;
    const goodputMbps = activeTo > activeFrom ? (delivered * 8) / ((activeTo - activeFrom) * 1000) : null;
    return {
      id,
      controller,
      startMs,
      stopMs,
      bytesDelivered: flow.receiver.stats.bytesDelivered,
      completed: flow.config.bytes === null ? null : flow.completionMs !== null,
      completionMs: flow.completionMs === null ? null : round(flow.completionMs, 3),
      goodputMbps: goodputMbps === null ? null : round(goodputMbps, 4),
      packetsSent: sender.packetsSent,
      packetsLost: sender.packetsLost,
      lossRate: sender.packetsSent ? round(sender.packetsLost / sender.packetsSent, 5) : 0,
      bytesRetransmitted: sender.bytesRetransmitted,
      ptoCount: sender.ptoCount,
      linkDrops: flow.drops,
      rttMs: describe(flow.rtt),
      owdMs: describe(flow.owd),
      queueDelayMs: describe(flow.queueDelay),
    };
  });
  const goodputs = flowSummaries.map((f) => f.goodputMbps).filter((g) => g !== null);
  return {
    scenario: scenario.name,
    run: run.name,
    seed: scenario.seed,
    durationMs: scenario.durationMs,
    measure: { fromMs, toMs },
    link: {
      bandwidthMbps: scenario.link.bandwidthMbps,
      delayMs: scenario.link.delayMs,
      utilisation: round(link.busyMs / (toMs - fromMs), 4),
      drops: link.drops,
      queueDelayMs: describe(link.queueDelay),
    },
    aggregate: {
      goodputMbps: round(goodputs.reduce((a, b) => a + b, 0), 4),
      jainIndex: goodputs.length ? round(jainIndex(goodputs), 4) : null,
    },
    flows: flowSummaries,
  };
}

module.exports = { runExperiment };
