import { runDriverConformance } from './driver-conformance.ts';
import { SimDriver } from './sim-driver.ts';

let n = 0;
runDriverConformance('simulated', {
  unavailable: () => null,
  async setup() {
    const d = new SimDriver();
    return {
      driver: d,
      define: async (name, label) => d.define({ name, label }),
      start: async (name) => d.setRunning(name, true, [`sim${++n}`]),
      stop: async (name) => d.setRunning(name, false),
      undefine: async (name) => d.undefine(name),
    };
  },
  async teardown() {},
});
