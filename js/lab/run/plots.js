'use strict';
/**
 * SVG plots of experiment results, drawn with Vega-Lite specs rendered headless by Vega
 * (no browser, no canvas: `new vega.View(..., { renderer: 'none' }).toSVG()`).
 *
 *   cwnd.svg             congestion window and bytes in flight over time, one panel per run
 *   rtt.svg              RTT (mean of the samples in each interval) over time
 *   throughput.svg       goodput over time, with the bottleneck capacity
 *   throughput-delay.svg goodput against 95th percentile one-way delay, Pantheon-style
 */

const vega = require('vega');
const vegaLite = require('vega-lite');

const WIDTH = 640;
/** Tableau 10, as Vega's default; capacity is drawn in grey. */
const PALETTE = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'];
const CAPACITY = 'capacity';

/**
 * The same flow gets the same colour in every plot, in the order the runs were given.
 * @param {object[]} results
 * @param {boolean} [withCapacity=false] add the grey capacity line to the legend
 */
function colorEncoding(results, withCapacity = false) {
  const domain = [];
  for (const run of results) {
    for (const flow of run.series.flows) domain.push(flowLabel(results, run, flow));
  }
  const range = domain.map((_, i) => PALETTE[i % PALETTE.length]);
  if (withCapacity) {
    domain.push(CAPACITY);
    range.push('#888');
  }
  return { field: 'flow', type: 'nominal', title: 'flow', scale: { domain, range } };
}

/**
 * A label for a flow that is unique across runs and short when it can be.
 * @param {object[]} results runs as returned by runExperiment
 * @param {object} run
 * @param {{id: number, controller: string}} flow
 */
function flowLabel(results, run, flow) {
  const flowsInRun = run.series.flows.length;
  if (flowsInRun === 1) return results.length === 1 ? flow.controller : run.name;
  const name = `flow ${flow.id} (${flow.controller})`;
  return results.length === 1 ? name : `${run.name}: ${name}`;
}

/**
 * Render a Vega-Lite spec to an SVG string.
 * @param {object} spec
 * @returns {Promise<string>}
 */
async function renderSvg(spec) {
  const compiled = vegaLite.compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    background: 'white',
    config: { font: 'Helvetica, Arial, sans-serif', view: { stroke: '#ddd' } },
    ...spec,
  }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function cwndSpec(results) {
  const values = [];
  for (const run of results) {
    for (const flow of run.series.flows) {
      const label = flowLabel(results, run, flow);
      for (const p of flow.points) {
        values.push({ run: run.name, flow: label, metric: 'cwnd', t: p.t, kb: p.cwnd / 1000 });
        values.push({ run: run.name, flow: label, metric: 'bytes in flight', t: p.t, kb: p.inflight / 1000 });
      }
    }
  }
  const layer = {
    mark: { type: 'line', strokeWidth: 1, interpolate: 'step-after' },
    encoding: {
      x: { field: 't', type: 'quantitative', title: 'time (s)' },
      y: { field: 'kb', type: 'quantitative', title: 'kB' },
      color: colorEncoding(results),
      strokeDash: { field: 'metric', type: 'nominal', title: null, sort: ['cwnd', 'bytes in flight'] },
    },
  };
  if (results.length === 1) {
    return { title: 'Congestion window and bytes in flight', width: WIDTH, height: 220, data: { values }, ...layer };
  }
  return {
    title: 'Congestion window and bytes in flight',
    data: { values },
    facet: { row: { field: 'run', type: 'nominal', title: null, sort: results.map((r) => r.name) } },
    spec: { width: WIDTH, height: 120, ...layer },
    resolve: { scale: { y: 'independent' } },
  };
}

function rttSpec(results) {
  const values = [];
  for (const run of results) {
    for (const flow of run.series.flows) {
      const label = flowLabel(results, run, flow);
      for (const p of flow.points) if (p.rtt !== null) values.push({ flow: label, t: p.t, rtt: p.rtt });
    }
  }
  return {
    title: 'Round-trip time',
    width: WIDTH,
    height: 260,
    data: { values },
    mark: { type: 'line', strokeWidth: 1 },
    encoding: {
      x: { field: 't', type: 'quantitative', title: 'time (s)' },
      y: { field: 'rtt', type: 'quantitative', title: 'RTT (ms)' },
      color: colorEncoding(results),
    },
  };
}

function throughputSpec(results) {
  const values = [];
  for (const p of results[0].series.capacity) values.push({ flow: CAPACITY, t: p.t, mbps: p.mbps });
  for (const run of results) {
    for (const flow of run.series.flows) {
      const label = flowLabel(results, run, flow);
      for (const p of flow.points) values.push({ flow: label, t: p.t, mbps: p.throughputMbps });
    }
  }
  return {
    title: 'Goodput (and bottleneck capacity)',
    width: WIDTH,
    height: 260,
    data: { values },
    mark: { type: 'line', strokeWidth: 1, interpolate: 'step-before' },
    encoding: {
      x: { field: 't', type: 'quantitative', title: 'time (s)' },
      y: { field: 'mbps', type: 'quantitative', title: 'Mbit/s' },
      color: colorEncoding(results, true),
      strokeDash: {
        condition: { test: `datum.flow === '${CAPACITY}'`, value: [4, 3] },
        value: [1, 0],
      },
    },
  };
}

function throughputDelaySpec(results) {
  const values = [];
  for (const run of results) {
    for (const flow of run.summary.flows) {
      if (flow.goodputMbps === null || flow.owdMs.p95 === null) continue;
      const label = flowLabel(results, run, { id: flow.id, controller: flow.controller });
      values.push({ flow: label, delay: flow.owdMs.p95, mbps: flow.goodputMbps });
    }
  }
  const encoding = {
    x: {
      field: 'delay',
      type: 'quantitative',
      title: '95th percentile one-way delay (ms, better to the right)',
      scale: { reverse: true, zero: false, nice: true, padding: 40 },
    },
    y: { field: 'mbps', type: 'quantitative', title: 'goodput (Mbit/s)', scale: { zero: true } },
    color: colorEncoding(results),
  };
  return {
    title: 'Goodput against delay (measurement window)',
    width: 420,
    height: 320,
    data: { values },
    layer: [
      { mark: { type: 'point', filled: true, size: 90 }, encoding },
      {
        mark: { type: 'text', align: 'left', dx: 7, dy: -7, fontSize: 11 },
        encoding: { ...encoding, text: { field: 'flow' } },
      },
    ],
  };
}

/**
 * Draw every plot for a set of runs of one scenario.
 * @param {object[]} results runs as returned by runExperiment
 * @returns {Promise<Record<string, string>>} file name -> SVG text
 */
async function renderPlots(results) {
  return {
    'cwnd.svg': await renderSvg(cwndSpec(results)),
    'rtt.svg': await renderSvg(rttSpec(results)),
    'throughput.svg': await renderSvg(throughputSpec(results)),
    'throughput-delay.svg': await renderSvg(throughputDelaySpec(results)),
  };
}

module.exports = { renderPlots, renderSvg };
