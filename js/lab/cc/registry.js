'use strict';
/**
 * The controller registry: names to classes, so scenarios and the CLI name controllers.
 */

const registry = new Map();

/**
 * Register a controller class under a name (overwrites an earlier registration).
 * @param {string} name e.g. "cubic"
 * @param {new (options: object) => import('./controller').CongestionController} ControllerClass
 */
function registerController(name, ControllerClass) {
  if (typeof ControllerClass !== 'function') {
    throw new TypeError(`controller ${name} must be a class`);
  }
  registry.set(name, ControllerClass);
}

/**
 * @param {string} name
 * @param {object} [options] passed to the constructor
 * @returns {import('./controller').CongestionController}
 */
function createController(name, options = {}) {
  const ControllerClass = registry.get(name);
  if (!ControllerClass) {
    const error = new Error(
      `unknown congestion controller "${name}" (known: ${listControllers().join(', ')})`,
    );
    error.code = 'ERR_LAB_UNKNOWN_CONTROLLER';
    throw error;
  }
  return new ControllerClass(options);
}

/** @returns {string[]} registered names, in registration order */
function listControllers() {
  return [...registry.keys()];
}

module.exports = { registerController, createController, listControllers };
