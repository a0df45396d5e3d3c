#!/usr/bin/env node
// `twill`: the CNI plugin executable that container runtimes run for every pod (no arguments),
// and `twill serve`, the same plugin kept warm for the native front-end (src/cni/server.ts).
// Wiring only; the protocol lives in src/cni/skel.ts. Kept free of imports that cost start-up time.
import { main } from '../cni/skel';

if (process.argv[2] === 'serve') {
  (require('../cni/server') as typeof import('../cni/server')).serveMain(process.argv.slice(3));
} else {
  main();
  // Output is written synchronously by now: exiting here skips Node's teardown of the heap.
  process.exit();
}
