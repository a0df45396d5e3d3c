// Notices a change of the network config in etcd after start-up. twilld applies the config it
// started with (changing Network, SubnetLen or the VNI under running pods is not something to
// do live), so a change is logged once, saying a restart applies it — before issue 16 it was
// ignored without a word. Polled: one small read every interval, no watch to keep alive.
import { NetworkConfigError, parseNetworkConfig } from '../config/network';
import type { Logger } from '../observe/log';
import { errorLine } from './readiness';

export class ConfigChangeWatch {
  private timer: NodeJS.Timeout | undefined;
  private told: string;

  constructor(
    private readonly running: string,
    private readonly read: () => Promise<string | null>,
    private readonly key: string,
    private readonly log: Logger,
  ) {
    this.told = running;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  async check(): Promise<void> {
    let text: string | null;
    try {
      text = await this.read();
    } catch {
      return; // etcd trouble is reported where it matters (renewals, the watch)
    }
    const seen = text ?? '';
    if (seen === this.told) return;
    this.told = seen;
    if (seen === this.running) {
      this.log.info({ key: this.key }, 'network config in etcd is back to the one twilld runs with');
    } else if (text === null) {
      this.log.warn({ key: this.key }, 'network config was deleted from etcd; twilld keeps running with the one it started with');
    } else {
      try {
        parseNetworkConfig(text);
        this.log.warn({ key: this.key, config: text }, 'network config changed in etcd; restart twilld to apply it (systemctl restart twilld)');
      } catch (err) {
        const field = err instanceof NetworkConfigError ? err.field : undefined;
        this.log.error({ key: this.key, field, err: errorLine(err) }, 'network config in etcd changed and is invalid; twilld keeps running with the one it started with');
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
