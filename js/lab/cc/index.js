'use strict';
/**
 * The built-in controllers, registered by name. A new controller is one file plus one
 * line here (see docs/lab.md, "Adding a controller").
 */

const { CongestionController } = require('./controller');
const { registerController, createController, listControllers } = require('./registry');
const { NewReno } = require('./newreno');
const { Cubic } = require('./cubic');
const { Bbr } = require('./bbr');
const { Vegas } = require('./vegas');

registerController(NewReno.id, NewReno);
registerController(Cubic.id, Cubic);
registerController(Bbr.id, Bbr);
registerController(Vegas.id, Vegas);

module.exports = {
  CongestionController,
  NewReno,
  Cubic,
  Bbr,
  Vegas,
  registerController,
  createController,
  listControllers,
};
