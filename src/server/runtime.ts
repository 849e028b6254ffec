/**
 * The controller process's V8 settings (`hueguard serve`, and the bench that measures it).
 *
 * Allocation-site pretenuring off. V8 allocates objects straight into the old generation when objects from the
 * same allocation site tended to survive a young-generation collection. An evidence request's objects (its parsed
 * body and IMA entries) live for the commit delay and their group (ingest.ts: 10–30 ms), long enough to be seen
 * surviving, so V8 began to allocate them old: about 2.2 MB moved to the old generation per young collection
 * instead of 0.8, and the collections of the old generation that followed every few seconds held the thread in
 * the middle of the load (bench:controller: p99 by second 100–300 ms in one second of ten, 22–30 ms without).
 * The flag is read at each collection, so setting it at start takes effect.
 */
import v8 from 'node:v8';

let tuned = false;

/** Apply the controller's V8 settings to this process (once; later calls do nothing). */
export function tuneControllerRuntime(): void {
  if (tuned) return;
  tuned = true;
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
}
