// CNI spec versions this plugin speaks, and their ordering. The result format differs between
// 0.3.x/0.4.0 and 1.x (see result.ts); CHECK exists from 0.4.0, STATUS and GC from 1.1.0.
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const LATEST_VERSION = '1.1.0';

const SEMVER = /^(\d{1,6})\.(\d{1,6})\.(\d{1,6})$/;

export function isSemver(v: unknown): v is string {
  return typeof v === 'string' && SEMVER.test(v);
}

export function isSupported(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Negative, zero or positive like a comparator; both must be semver strings. */
export function compareVersions(a: string, b: string): number {
  const pa = SEMVER.exec(a)!;
  const pb = SEMVER.exec(b)!;
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return d;
  }
  return 0;
}
