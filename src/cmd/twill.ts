#!/usr/bin/env node
// `twill`: the CNI plugin executable that container runtimes run for every pod. Wiring only;
// the protocol lives in src/cni/skel.ts. Kept free of imports that cost start-up time.
import { main } from '../cni/skel';

main();
// Output is written synchronously by now: exiting here skips Node's teardown of the heap.
process.exit();
