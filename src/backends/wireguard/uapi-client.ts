// One UAPI exchange over wireguard-go's unix socket: write the request, read until the blank
// line that ends every answer. A fresh connection per exchange (wireguard-go serves each
// connection until it closes; a daemon restart or a restarted wireguard-go then needs nothing).
import * as net from 'node:net';
import * as path from 'node:path';
import { UapiError } from './uapi-text';

export const UAPI_DIR = '/var/run/wireguard';
const TIMEOUT_MS = 2000;

export const uapiSocketPath = (ifname: string): string => path.join(UAPI_DIR, `${ifname}.sock`);

export function uapiExchange(socketPath: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    const done = (err: Error | undefined, answer?: string): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(answer!);
    };
    const timer = setTimeout(() => done(new UapiError(`UAPI ${socketPath}: no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.endsWith('\n\n')) done(undefined, buf);
    });
    sock.on('error', (err) => done(err));
    sock.on('close', () => done(new UapiError(`UAPI ${socketPath}: closed before the answer ended`)));
  });
}
