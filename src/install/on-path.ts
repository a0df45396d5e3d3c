// Whether a program is on PATH (an executable file in one of its directories), as a shell's
// `command -v` would find it. Used for prerequisite checks, never to run anything.
import * as fs from 'node:fs';

export function onPath(bin: string, pathVar = process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'): boolean {
  return pathVar.split(':').some((d) => {
    if (d === '') return false;
    try {
      fs.accessSync(`${d}/${bin}`, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
