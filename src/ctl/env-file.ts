// Reads twilld's environment file (KEY=VALUE lines, systemd's EnvironmentFile syntax subset)
// so twillctl defaults to the endpoints and address the daemon itself uses.
import * as fs from 'node:fs';
import { underOwnRoot } from '../install/root-of';

const ENV_FILE_REL = 'etc/twill/twilld.env';
export const DEFAULT_ENV_FILE = `/${ENV_FILE_REL}`;

/**
 * The settings file of the install this code runs from: an install under --root (the lab's
 * <labdir>/root) has its own etc/twill/twilld.env, and its twillctl must read that one, not the
 * machine's. `dir` is this module's directory; from a checkout, the machine's file.
 */
export function ownEnvFile(dir: string = __dirname): string {
  return underOwnRoot(dir, ENV_FILE_REL);
}

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) v = v.slice(1, -1);
    out[m[1]!] = v;
  }
  return out;
}

/** The file's settings, or {} when it does not exist or cannot be read. */
export function readEnvFile(file: string): Record<string, string> {
  try {
    return parseEnvFile(fs.readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
}

/** First non-empty of: flag, process environment, environment file, default. */
export function setting(flag: string | undefined, name: string, fileEnv: Record<string, string>, dflt: string): string {
  for (const v of [flag, process.env[name], fileEnv[name]]) if (v !== undefined && v !== '') return v;
  return dflt;
}
