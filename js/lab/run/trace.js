'use strict';
/**
 * A qlog trace in JSON-SEQ form (RFC 7464: each record is 0x1E, JSON, newline), with QUIC
 * event names where one fits (transport:packet_sent, recovery:metrics_updated, ...) and
 * `minimalt:` for the rest (link drops, link changes). The layout follows qlog 0.3, which
 * qvis reads.
 *
 * Times are the simulator's virtual milliseconds, rounded to microseconds, so the trace of
 * a run depends on nothing but the scenario and its seed.
 */

const RS = '\x1e';

class QlogTrace {
  /**
   * @param {object} options
   * @param {string} options.title
   * @param {() => number} options.clock returns the current time in ms
   * @param {boolean} [options.packets=true] include per-packet events
   * @param {object} [options.configuration] stored in the header (e.g. the scenario)
   */
  constructor({ title, clock, packets = true, configuration = undefined }) {
    this._clock = clock;
    this.packets = packets;
    this._records = [];
    this._push({
      qlog_version: '0.3',
      qlog_format: 'JSON-SEQ',
      title,
      trace: {
        vantage_point: { type: 'network', name: 'minimalt-lab simulator' },
        common_fields: { time_format: 'relative', reference_time: 0 },
        configuration,
      },
    });
  }

  /**
   * Record an event at the current time.
   * @param {string} name e.g. "recovery:packet_lost"
   * @param {object} data
   * @param {string} [groupId] the flow the event belongs to
   */
  event(name, data, groupId) {
    const time = Math.round(this._clock() * 1000) / 1000;
    this._push(groupId === undefined ? { time, name, data } : { time, name, group_id: groupId, data });
  }

  /**
   * A view that tags every event with one group id (what a Sender takes as `qlog`).
   * @param {string} groupId
   * @returns {{packets: boolean, event: (name: string, data: object) => void}}
   */
  forGroup(groupId) {
    return { packets: this.packets, event: (name, data) => this.event(name, data, groupId) };
  }

  /** @returns {string} the whole trace */
  toString() {
    return this._records.join('');
  }

  _push(record) {
    this._records.push(RS + JSON.stringify(record) + '\n');
  }
}

/**
 * Parse a JSON-SEQ qlog back into records (header first).
 * @param {string} text
 * @returns {object[]}
 */
function parseQlog(text) {
  return text
    .split(RS)
    .filter((part) => part.trim() !== '')
    .map((part) => JSON.parse(part));
}

module.exports = { QlogTrace, parseQlog };
