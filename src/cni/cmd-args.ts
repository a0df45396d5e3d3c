// What one CNI invocation asks for (from its CNI_* environment), as the commands receive it.
// A file of its own so the commands (add, check, del) and the skeleton that dispatches to them
// (skel.ts) both depend on it instead of on each other.

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type Command = (typeof COMMANDS)[number];

export interface CmdArgs {
  command: Command;
  containerId: string;
  /** Absolute path of the pod's network namespace; optional for DEL. */
  netns: string | undefined;
  ifname: string;
  /** CNI_ARGS, unparsed: twill takes nothing from it. */
  args: string;
  path: string;
}
