'use strict';
/**
 * minimalt's reliability and congestion-control lab.
 *
 *   const lab = require('minimalt/js/lab');
 *   const { summary } = await lab.runScenario(require('./scenario.json'), { outDir: 'out' });
 *
 * Layers, bottom up: sim/ (discrete-event simulator, links, queues, loss), reliability/
 * (Sender and Receiver over any datagram transport), cc/ (congestion controllers and their
 * registry), transport/ (real UDP, a minimalt tunnel's datagrams), run/ (scenarios,
 * experiments, traces, plots).
 */

const cc = require('./cc');
const { Simulator } = require('./sim/simulator');
const { Network } = require('./sim/network');
const { Link } = require('./sim/link');
const { createPrng } = require('./sim/prng');
const { Sender } = require('./reliability/sender');
const { Receiver } = require('./reliability/receiver');
const { assertTransport } = require('./transport');
const { UdpTransport, createUdpPair } = require('./transport/udp');
const { MinimaltTransport, createMinimaltPair, runMinimaltTransfer } = require('./transport/minimalt');
const { PRESETS } = require('./run/presets');
const { normalizeScenario, ScenarioError } = require('./run/scenario');
const { runExperiment } = require('./run/experiment');
const { runScenario, loadScenario } = require('./run/runner');
const { runUdpTransfer } = require('./run/udp-transfer');
const { renderPlots } = require('./run/plots');
const { QlogTrace, parseQlog } = require('./run/trace');
const { jainIndex, percentile } = require('./run/stats');

module.exports = {
  // Running experiments
  runScenario,
  loadScenario,
  normalizeScenario,
  runExperiment,
  runUdpTransfer,
  runMinimaltTransfer,
  renderPlots,
  PRESETS,
  ScenarioError,
  // Congestion controllers
  CongestionController: cc.CongestionController,
  registerController: cc.registerController,
  createController: cc.createController,
  listControllers: cc.listControllers,
  controllers: { NewReno: cc.NewReno, Cubic: cc.Cubic, Bbr: cc.Bbr, Vegas: cc.Vegas },
  // Building blocks
  Sender,
  Receiver,
  Simulator,
  Network,
  Link,
  createPrng,
  assertTransport,
  UdpTransport,
  createUdpPair,
  MinimaltTransport,
  createMinimaltPair,
  QlogTrace,
  parseQlog,
  jainIndex,
  percentile,
};
