// What a host needs besides twill itself, by backend, checked by `twillctl install` so the
// operator hears it at install time rather than from a daemon that cannot start its datapath.
// Pure: the caller says which programs are on PATH.

export interface HostToolNeed {
  bin: string;
  pkg: string;
  why: string;
}

export const HOST_TOOLS: readonly HostToolNeed[] = [
  { bin: 'wireguard-go', pkg: 'wireguard-go', why: 'the wireguard backend on a kernel without WireGuard (twilld starts it)' },
  { bin: 'wg', pkg: 'wireguard-tools', why: 'inspecting the wireguard backend (wg show)' },
];

/** One line with a remedy per missing program. */
export function missingHostTools(present: (bin: string) => boolean): string[] {
  return HOST_TOOLS.filter((t) => !present(t.bin)).map((t) => `${t.bin} not found: needed for ${t.why}; apt-get install -y ${t.pkg}`);
}
