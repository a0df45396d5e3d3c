// Runs an async step one at a time, coalescing calls that arrive while it runs into one more
// run afterwards: a burst of triggers (convergences, inotify events) costs at most two runs and
// never two at once. Calls made meanwhile get the promise of the current round.
export function coalesced(step: () => Promise<void>, stopped: () => boolean): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await step();
        } while (again && !stopped());
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
}
